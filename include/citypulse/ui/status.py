"""A city's status in words: fresh, late, failing, drifting (or waiting for its first load).
Drifting: recent days far below their weekday's median, a reject rate far above its median,
an audit that left days unrepaired, or the portal's columns no longer the contract's.

Pure functions over facts read elsewhere (`citypulse.ui.health`), so every rule is tested
without a database: which status wins, and the sentence that tells an operator why.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# A day is flagged when it holds less than this share of its weekday's trailing median
# (an incomplete publication or a portal outage), judged on at least MIN_SAMPLES earlier
# same weekdays within TRAILING_WEEKS.
LOW_DAY_SHARE = 0.5
TRAILING_WEEKS = 8
MIN_SAMPLES = 3
# The latest run's reject rate is drift when above both this floor and twice its median.
REJECT_RATE_FLOOR = 0.01
RECENT_DAYS = 7


class Status(StrEnum):
    FAILING = "failing"
    LATE = "late"
    DRIFTING = "drifting"
    FRESH = "fresh"
    WAITING = "waiting"


@dataclass(frozen=True)
class DayCount:
    """One local day of a city: rows stored, open rejects, and whether any run loaded it."""

    day: date
    rows: int
    rejects: int
    loaded: bool

    @property
    def reject_rate(self) -> float | None:
        total = self.rows + self.rejects
        return self.rejects / total if self.loaded and total else None


@dataclass(frozen=True)
class FlaggedDay:
    day: date
    rows: int
    median: float

    @property
    def share(self) -> float:
        return self.rows / self.median


@dataclass(frozen=True)
class LatestRun:
    """The newest Airflow run of the city's DAG."""

    run_id: str
    state: str
    at: datetime
    failed_tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatestAudit:
    at: datetime
    days_checked: int
    days_differing: int
    days_repaired: int
    rows_changed: int
    outcome: str = "complete"  # or "refused": the portal looked like an outage
    refusal: str | None = None
    days_disputed: int = 0  # the portal's grouped count disagrees with its own records


@dataclass(frozen=True)
class OpenSchemaChange:
    """A difference between the portal's columns and the contract, open since `detected_at`
    (`citypulse.pipeline.drift`): `before` the contract's type, `after` the portal's."""

    change: str  # added | removed | retyped
    column: str
    before: str | None
    after: str | None
    required: bool
    detected_at: datetime
    run_id: str

    def describe(self) -> str:
        if self.change == "added":
            return f"{self.column} added (not loaded)"
        if self.change == "removed":
            return f"{self.column} removed" + (" (required)" if self.required else "")
        return f"{self.column} retyped to {self.after} (the contract loads {self.before})"


@dataclass(frozen=True)
class CityFacts:
    dag_id: str
    timezone: str
    deadline_hours: float
    latest_run: LatestRun | None
    last_success_at: datetime | None
    loaded_through: datetime | None  # end (local wall time) of the newest window loaded
    newest_event_utc: datetime | None
    days: tuple[DayCount, ...] = ()
    latest_reject_rate: float | None = None
    latest_audit: LatestAudit | None = None
    schema_drift: tuple[OpenSchemaChange, ...] = ()


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    flagged: tuple[FlaggedDay, ...] = field(default_factory=tuple)


def flag_low_days(days: tuple[DayCount, ...] | list[DayCount]) -> list[FlaggedDay]:
    """Loaded days far below the median of the same weekday's earlier loaded days."""
    by_day = {d.day: d for d in days}
    flagged = []
    for d in days:
        if not d.loaded:
            continue
        earlier = [
            by_day[d.day - timedelta(weeks=w)].rows
            for w in range(1, TRAILING_WEEKS + 1)
            if d.day - timedelta(weeks=w) in by_day and by_day[d.day - timedelta(weeks=w)].loaded
        ]
        if len(earlier) < MIN_SAMPLES:
            continue
        median = statistics.median(earlier)
        if median > 0 and d.rows < LOW_DAY_SHARE * median:
            flagged.append(FlaggedDay(d.day, d.rows, median))
    return flagged


def human_duration(delta: timedelta) -> str:
    """`45 seconds`, `12 minutes`, `5 hours`, `3 days`: the largest unit that reads well."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size or (unit == "minute" and seconds >= size):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def ago(moment: datetime, now: datetime) -> str:
    return f"{human_duration(now - moment)} ago"


def day_label(day: date) -> str:
    return f"{day:%a} {day:%b} {day.day}"


def expected_through(timezone: str, deadline_hours: float, now: datetime) -> datetime:
    """The local midnight a city's loads should reach by now: today's once the daily run's
    deadline has passed, else yesterday's."""
    local_now = now.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    today = datetime.combine(local_now.date(), datetime.min.time())
    if local_now >= today + timedelta(hours=deadline_hours):
        return today
    return today - timedelta(days=1)


def classify(facts: CityFacts, now: datetime) -> Verdict:
    """The city's status, the first that holds of failing, late, drifting, else fresh."""
    flagged = tuple(flag_low_days(facts.days))
    run = facts.latest_run
    if run is not None and run.state == "failed":
        tasks = f" in {', '.join(run.failed_tasks)}" if run.failed_tasks else ""
        audit = facts.latest_audit
        refused = (
            f" (the partition audit was refused: {audit.refusal})"
            if audit is not None and audit.outcome == "refused" and "reconcile" in tasks
            else ""
        )
        return Verdict(
            Status.FAILING,
            f"the latest run ({run.run_id}) failed{tasks} {ago(run.at, now)}{refused}; "
            "open the DAG for its log",
            flagged,
        )
    if facts.last_success_at is None or facts.loaded_through is None:
        return Verdict(Status.WAITING, "no run has loaded data yet", flagged)
    due = expected_through(facts.timezone, facts.deadline_hours, now)
    if facts.loaded_through < due:
        missing = (due - facts.loaded_through).days
        return Verdict(
            Status.LATE,
            f"loaded through {day_label(facts.loaded_through.date() - timedelta(days=1))}; "
            f"{missing} day{'s' if missing != 1 else ''} behind (the last success was "
            f"{ago(facts.last_success_at, now)})",
            flagged,
        )
    drift = _drift(facts, flagged, now)
    if drift:
        return Verdict(Status.DRIFTING, "; ".join(drift), flagged)
    lag = (
        f"; newest event {human_duration(now - facts.newest_event_utc)} old"
        if facts.newest_event_utc
        else ""
    )
    return Verdict(
        Status.FRESH,
        f"loaded through {day_label(facts.loaded_through.date() - timedelta(days=1))}, "
        f"last success "
        f"{ago(facts.last_success_at, now)}{lag}",
        flagged,
    )


def _drift(facts: CityFacts, flagged: tuple[FlaggedDay, ...], now: datetime) -> list[str]:
    reasons = []
    local_today = now.astimezone(ZoneInfo(facts.timezone)).date()
    recent = [f for f in flagged if (local_today - f.day).days <= RECENT_DAYS]
    if recent:
        worst = min(recent, key=lambda f: f.share)
        reasons.append(
            f"{len(recent)} recent day{'s' if len(recent) != 1 else ''} far below their "
            f"weekday's median (worst {day_label(worst.day)}: {worst.rows:,} rows, "
            f"{worst.share:.0%} of {worst.median:,.0f})"
        )
    rates = [d.reject_rate for d in facts.days if d.reject_rate is not None]
    latest = facts.latest_reject_rate
    if latest is not None and rates:
        median = statistics.median(rates)
        if latest > REJECT_RATE_FLOOR and latest > 2 * median:
            reasons.append(
                f"the latest run rejected {latest:.1%} of its records "
                f"(the daily median is {median:.1%})"
            )
    audit = facts.latest_audit
    if audit is not None and audit.outcome == "refused":
        reasons.append(f"the partition audit {ago(audit.at, now)} was refused: {audit.refusal}")
    elif audit is not None and audit.days_differing > audit.days_repaired:
        left = audit.days_differing - audit.days_repaired
        reasons.append(
            f"the partition audit {ago(audit.at, now)} found {audit.days_differing} days "
            f"differing from the portal and left {left} unrepaired"
        )
    if audit is not None and audit.days_disputed:
        reasons.append(
            f"the partition audit {ago(audit.at, now)} found {audit.days_disputed} "
            f"day{'s' if audit.days_disputed != 1 else ''} whose grouped count on the portal "
            "disagrees with its records (see citypulse.partition_disputes)"
        )
    if facts.schema_drift:
        since = min(d.detected_at for d in facts.schema_drift)
        reasons.append(
            f"the portal's columns differ from the contract (since {ago(since, now)}): "
            + ", ".join(d.describe() for d in facts.schema_drift)
        )
    return reasons
