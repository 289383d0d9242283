"""Is a city's data fresh enough to train on? Read from the load audit and the incidents.

A city is fresh when its loads reach (nearly) up to yesterday, in the city's own timezone,
relative to the retrain run's date or its `as_of` day (a backtest: staleness is judged
against that day, and events from it on are not known yet), and its newest event is as
recent. Only whole loaded days
are used for training: a day not loaded yet is unknown, not a day without incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citypulse.settings import SCHEMA
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.types import Cursor


@dataclass(frozen=True)
class Freshness:
    """What the warehouse holds for one city, judged against a reference instant."""

    city: str
    timezone: str
    reference: datetime  # aware: the as-of day's local midnight, or the run's logical date
    last_success_at: datetime | None
    first_loaded_day: date | None
    last_loaded_day: date | None
    newest_event_local: datetime | None

    @property
    def local_yesterday(self) -> date:
        """The last complete local day of the city at the reference instant."""
        return self.reference.astimezone(ZoneInfo(self.timezone)).date() - timedelta(days=1)

    @property
    def last_day(self) -> date | None:
        """The last day both loaded and complete: where training data ends."""
        if self.last_loaded_day is None or self.newest_event_local is None:
            return None
        return min(self.last_loaded_day, self.newest_event_local.date(), self.local_yesterday)

    @property
    def lag_days(self) -> int | None:
        """Days between the local yesterday and the last day with data."""
        last = self.last_day
        return None if last is None else (self.local_yesterday - last).days

    def problem(self, max_staleness_days: int) -> str | None:
        """Why the city is too stale to train, or None when it is fresh."""
        if self.last_success_at is None:
            return f"{self.city}: no successful load in {SCHEMA}.ingest_runs"
        if self.newest_event_local is None or self.last_day is None:
            return f"{self.city}: no incidents in {SCHEMA}.incidents"
        lag = self.lag_days
        if lag is not None and lag > max_staleness_days:
            return (
                f"{self.city}: data ends {self.last_day} (loads through {self.last_loaded_day}, "
                f"newest event {self.newest_event_local:%Y-%m-%d %H:%M}), {lag} days before "
                f"{self.local_yesterday}; more than the allowed {max_staleness_days}"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "reference": self.reference.isoformat(),
            "last_success_at": _iso(self.last_success_at),
            "first_loaded_day": _iso(self.first_loaded_day),
            "last_loaded_day": _iso(self.last_loaded_day),
            "newest_event_local": _iso(self.newest_event_local),
            "last_day": _iso(self.last_day),
            "lag_days": self.lag_days,
        }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def as_of_instant(day: date, timezone: str) -> datetime:
    """The start of a local day: what a run `as_of` that day knows is what was known then."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def read_freshness(cur: Cursor, city: str, timezone: str, reference: datetime) -> Freshness:
    """The city's freshness from `ingest_runs` and `incidents` (absent tables mean no data)."""
    cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
        (f"{SCHEMA}.ingest_runs", f"{SCHEMA}.incidents"),
    )
    if not cur.fetchone()[0]:
        return Freshness(city, timezone, reference, None, None, None, None)
    local_today = reference.astimezone(ZoneInfo(timezone)).date()
    before = datetime.combine(local_today, time(0))  # naive local, as event_time_local
    cur.execute(render("model/freshness.sql"), {"city": city, "before": before})
    last_success_at, first_day, last_day, newest = cur.fetchone()
    return Freshness(city, timezone, reference, last_success_at, first_day, last_day, newest)
