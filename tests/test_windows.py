"""Windows are local calendar days in each city's timezone, DST days included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citypulse.pipeline.windows import Window, window_for_dates, window_for_interval

# (timezone, spring-forward day, fall-back day) in 2025.
DST_DAYS = [
    ("America/New_York", "2025-03-09", "2025-11-02"),
    ("America/Chicago", "2025-03-09", "2025-11-02"),
    ("America/Los_Angeles", "2025-03-09", "2025-11-02"),
]


@pytest.mark.parametrize(("timezone", "spring", "fall"), DST_DAYS)
def test_dst_days_have_23_and_25_hours(timezone: str, spring: str, fall: str) -> None:
    assert window_for_dates(spring, spring, timezone).hours == 23
    assert window_for_dates(fall, fall, timezone).hours == 25
    assert window_for_dates("2025-06-01", "2025-06-01", timezone).hours == 24


@pytest.mark.parametrize(("timezone", "spring", "fall"), DST_DAYS)
def test_airflow_intervals_map_to_local_days(timezone: str, spring: str, fall: str) -> None:
    """The scheduler's own timetable (core class) yields whole local days, 23 h and 25 h."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable("0 0 * * *", timezone=timezone)
    for day, hours in ((spring, 23), (fall, 25)):
        local_start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(timezone))
        run_after = (local_start + timedelta(days=1, hours=12)).astimezone(UTC)
        interval = timetable.infer_manual_data_interval(run_after=run_after)
        window = window_for_interval(interval.start, interval.end, timezone)
        assert window.start == datetime.fromisoformat(day)
        assert window.end == datetime.fromisoformat(day) + timedelta(days=1)
        assert window.hours == hours
        assert (interval.end - interval.start) == timedelta(hours=hours)


def test_window_soql_uses_floating_timestamps() -> None:
    window = window_for_dates("2024-05-26", "2024-05-27", "America/New_York")
    assert window.soql("created_date") == (
        "created_date >= '2024-05-26T00:00:00.000' AND created_date < '2024-05-28T00:00:00.000'"
    )


def test_window_rejects_empty_and_aware_bounds() -> None:
    with pytest.raises(ValueError):
        window_for_dates("2024-05-27", "2024-05-26", "America/New_York")
    with pytest.raises(ValueError):
        Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), "UTC")
