"""A city's status in words: which status wins, and the sentence an operator reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from citypulse.ui.status import (
    CityFacts,
    DayCount,
    LatestAudit,
    LatestRun,
    OpenSchemaChange,
    Status,
    classify,
    flag_low_days,
    human_duration,
)

# 15:00 UTC = 09:00 in Chicago: past the 6-hour deadline of the run for Dec 3.
NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
TODAY = date(2026, 12, 4)


def days(rows: int = 100, n: int = 60, **overrides: int) -> list[DayCount]:
    """n loaded local days up to yesterday, `rows` each; overrides by ISO date."""
    out = []
    for i in range(n, 0, -1):
        day = TODAY - timedelta(days=i)
        out.append(DayCount(day, overrides.get(day.isoformat(), rows), 1, True))
    return out


def facts(**changes: object) -> CityFacts:
    base = CityFacts(
        dag_id="chicago_crime",
        timezone="America/Chicago",
        deadline_hours=6,
        latest_run=LatestRun("scheduled__2026-12-04", "success", NOW - timedelta(hours=3)),
        last_success_at=NOW - timedelta(hours=3),
        loaded_through=datetime(2026, 12, 4),
        newest_event_utc=NOW - timedelta(hours=10),
        days=tuple(days()),
        latest_reject_rate=0.01,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_city_loaded_through_yesterday_is_fresh() -> None:
    verdict = classify(facts(), NOW)
    assert verdict.status is Status.FRESH
    assert verdict.reason == (
        "loaded through Thu Dec 3, last success 3 hours ago; newest event 10 hours old"
    )


def test_a_failed_latest_run_wins_over_everything_and_names_its_tasks() -> None:
    run = LatestRun("manual__x", "failed", NOW - timedelta(minutes=20), ("validate",))
    verdict = classify(facts(latest_run=run, loaded_through=datetime(2026, 11, 1)), NOW)
    assert verdict.status is Status.FAILING
    assert verdict.reason.startswith("the latest run (manual__x) failed in validate 20 minutes ago")


def test_a_city_missing_yesterday_after_its_deadline_is_late() -> None:
    verdict = classify(facts(loaded_through=datetime(2026, 12, 2)), NOW)
    assert verdict.status is Status.LATE
    assert verdict.reason.startswith("loaded through Tue Dec 1; 2 days behind")


def test_before_the_deadline_yesterday_is_not_yet_due() -> None:
    early = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 02:00 in Chicago, deadline 06:00
    assert classify(facts(loaded_through=datetime(2026, 12, 3)), early).status is Status.FRESH
    assert classify(facts(loaded_through=datetime(2026, 12, 2)), early).status is Status.LATE


def test_a_fresh_city_names_the_day_it_is_loaded_through_not_the_day_due() -> None:
    # 02:00 in Chicago: Dec 3 is due by 06:00, but the run for it already loaded it.
    early = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    loaded = facts(
        loaded_through=datetime(2026, 12, 4),
        last_success_at=early - timedelta(hours=2),
        newest_event_utc=early - timedelta(hours=3),
    )
    verdict = classify(loaded, early)
    assert verdict.status is Status.FRESH
    assert verdict.reason == (
        "loaded through Thu Dec 3, last success 2 hours ago; newest event 3 hours old"
    )


def test_a_recent_day_far_below_its_weekday_median_is_drift() -> None:
    low = (TODAY - timedelta(days=2)).isoformat()
    verdict = classify(facts(days=tuple(days(**{low: 30}))), NOW)
    assert verdict.status is Status.DRIFTING
    assert (
        "1 recent day far below their weekday's median (worst Wed Dec 2: 30 rows, 30% of 100)"
        in (verdict.reason)
    )
    assert [f.day for f in verdict.flagged] == [TODAY - timedelta(days=2)]


def test_an_old_low_day_is_flagged_but_is_not_drift_today() -> None:
    old = (TODAY - timedelta(days=20)).isoformat()
    verdict = classify(facts(days=tuple(days(**{old: 10}))), NOW)
    assert verdict.status is Status.FRESH
    assert [f.day.isoformat() for f in verdict.flagged] == [old]


def test_a_reject_rate_twice_its_median_is_drift() -> None:
    verdict = classify(facts(latest_reject_rate=0.08), NOW)
    assert verdict.status is Status.DRIFTING
    assert "the latest run rejected 8.0% of its records (the daily median is 1.0%)" in (
        verdict.reason
    )


def test_an_audit_that_left_days_unrepaired_is_drift() -> None:
    audit = LatestAudit(NOW - timedelta(days=1), 365, 3, 1, 40)
    verdict = classify(facts(latest_audit=audit), NOW)
    assert verdict.status is Status.DRIFTING
    assert "found 3 days differing from the portal and left 2 unrepaired" in verdict.reason


def test_open_schema_drift_is_drift_naming_each_change_since_the_first() -> None:
    removed = OpenSchemaChange(
        "removed", "iucr", "text", None, False, NOW - timedelta(days=2), "scheduled__a"
    )
    retyped = OpenSchemaChange(
        "retyped", "arrest", "boolean", "number", False, NOW - timedelta(hours=5), "scheduled__b"
    )
    added = OpenSchemaChange("added", "zone", None, "text", False, NOW, "scheduled__b")
    verdict = classify(facts(schema_drift=(removed, retyped, added)), NOW)
    assert verdict.status is Status.DRIFTING
    assert verdict.reason == (
        "the portal's columns differ from the contract (since 2 days ago): iucr removed, "
        "arrest retyped to number (the contract loads boolean), zone added (not loaded)"
    )
    late = classify(facts(schema_drift=(removed,), loaded_through=datetime(2026, 12, 2)), NOW)
    assert late.status is Status.LATE  # late wins, as over every other drift


def test_a_city_never_loaded_is_waiting() -> None:
    verdict = classify(facts(latest_run=None, last_success_at=None, loaded_through=None), NOW)
    assert verdict.status is Status.WAITING


def test_low_days_need_enough_earlier_weekdays_and_skip_unloaded_ones() -> None:
    series = days(n=14)
    series[-1] = replace(series[-1], rows=0)  # only 1 earlier same weekday: not judged
    assert flag_low_days(series) == []
    unloaded = [replace(d, rows=0, loaded=False) if i == 59 else d for i, d in enumerate(days())]
    assert flag_low_days(unloaded) == []


def test_durations_read_in_the_largest_unit_that_reads_well() -> None:
    assert human_duration(timedelta(seconds=45)) == "45 seconds"
    assert human_duration(timedelta(minutes=1, seconds=5)) == "1 minute"
    assert human_duration(timedelta(minutes=90)) == "90 minutes"
    assert human_duration(timedelta(hours=5)) == "5 hours"
    assert human_duration(timedelta(days=3, hours=2)) == "3 days"


def test_a_refused_audit_is_drift_saying_why() -> None:
    refusal = "the portal counts 0 records for the 62 days the warehouse holds (1,157 rows)"
    audit = LatestAudit(NOW - timedelta(hours=3), 62, 0, 0, 0, "refused", refusal)
    verdict = classify(facts(latest_audit=audit), NOW)
    assert verdict.status is Status.DRIFTING
    assert f"the partition audit 3 hours ago was refused: {refusal}" in verdict.reason


def test_days_the_portal_disputes_are_drift() -> None:
    audit = LatestAudit(NOW - timedelta(days=1), 365, 0, 0, 0, "complete", None, 2)
    verdict = classify(facts(latest_audit=audit), NOW)
    assert verdict.status is Status.DRIFTING
    assert "2 days whose grouped count on the portal disagrees with its records" in verdict.reason
