"""Freshness comes from the load audit and the incidents, in the city's own timezone; a city
that stopped loading, or loads nothing new, is stale and named as such.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

MONDAY_NOON = datetime(2025, 11, 10, 12, tzinfo=UTC)


def freshness(**overrides: Any) -> Any:
    from citypulse.model.freshness import Freshness

    values: dict[str, Any] = {
        "city": "nyc_311",
        "timezone": "America/New_York",
        "reference": MONDAY_NOON,
        "last_success_at": datetime(2025, 11, 10, 5, tzinfo=UTC),
        "first_loaded_day": date(2025, 8, 1),
        "last_loaded_day": date(2025, 11, 9),
        "newest_event_local": datetime(2025, 11, 9, 23, 50),
    }
    return Freshness(**{**values, **overrides})


def test_fresh_city_has_no_problem_and_ends_yesterday() -> None:
    state = freshness()
    assert state.problem(3) is None
    assert state.last_day == date(2025, 11, 9) and state.lag_days == 0


def test_stale_loads_and_silent_portals_are_stale() -> None:
    stopped = freshness(last_loaded_day=date(2025, 11, 2))
    assert stopped.lag_days == 7
    assert "more than the allowed 3" in stopped.problem(3)
    assert stopped.problem(7) is None
    silent = freshness(newest_event_local=datetime(2025, 11, 1, 12))
    assert silent.last_day == date(2025, 11, 1) and silent.problem(3)
    assert "no successful load" in freshness(last_success_at=None).problem(3)
    assert "no incidents" in freshness(newest_event_local=None).problem(3)


def test_yesterday_is_local_to_the_city() -> None:
    early = datetime(2025, 11, 10, 6, tzinfo=UTC)  # still Sunday evening in Seattle
    seattle = freshness(city="seattle_crime", timezone="America/Los_Angeles", reference=early)
    assert seattle.local_yesterday == date(2025, 11, 8)
    assert seattle.last_day == date(2025, 11, 8)  # Sunday is not over there yet
    assert freshness(reference=early).local_yesterday == date(2025, 11, 9)


def test_read_from_the_warehouse(fresh_warehouse: str, contracts: list[Any]) -> None:
    import psycopg2

    from citypulse.model.freshness import read_freshness
    from citypulse_dev.sample_history import load_history

    nyc = next(c for c in contracts if c.dag_id == "nyc_311")
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        empty = read_freshness(cur, "nyc_311", nyc.timezone, MONDAY_NOON)
    conn.close()
    assert "no successful load" in (empty.problem(3) or "")

    first, last = date(2025, 11, 6), date(2025, 11, 8)
    load_history([nyc], first, last, dsn=fresh_warehouse, records_per_day=30)
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        state = read_freshness(cur, "nyc_311", nyc.timezone, MONDAY_NOON)
        other = read_freshness(cur, "chicago_crime", "America/Chicago", MONDAY_NOON)
    conn.close()
    assert (state.first_loaded_day, state.last_loaded_day) == (first, last)
    assert state.newest_event_local is not None and state.newest_event_local.date() == last
    assert state.lag_days == 1 and state.problem(3) is None
    assert state.problem(0) is not None
    assert other.problem(3) is not None  # a city never loaded is stale
    assert state.as_dict()["last_day"] == last.isoformat()


@pytest.mark.parametrize("days_late", [4, 10])
def test_stale_city_is_skipped_by_fresh_city(
    fresh_warehouse: str, contracts: list[Any], days_late: int
) -> None:
    from citypulse.model.config import CitySkipped, RetrainConfig
    from citypulse.model.retrain import fresh_city
    from citypulse_dev.sample_history import load_history

    nyc = next(c for c in contracts if c.dag_id == "nyc_311")
    last = date(2025, 11, 9) - timedelta(days=days_late)
    load_history([nyc], last - timedelta(days=1), last, dsn=fresh_warehouse, records_per_day=20)
    with pytest.raises(CitySkipped, match="stale data"):
        fresh_city(nyc, RetrainConfig(), MONDAY_NOON, fresh_warehouse)


def test_a_skipped_city_logs_a_warning_and_skips_only_its_task() -> None:
    import logging

    from airflow.sdk.exceptions import AirflowSkipException

    from citypulse.model.config import CitySkipped
    from citypulse.model.tasks import skipping_city

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("citypulse.model.tasks")
    logger.addHandler(handler)
    try:
        with (
            pytest.raises(AirflowSkipException, match="seattle_crime: stale data"),
            skipping_city("seattle_crime"),
        ):
            raise CitySkipped("stale data, not retrained: loads ended 2025-11-01")
        with skipping_city("nyc_311"):
            pass  # a fresh city is left alone
    finally:
        logger.removeHandler(handler)
    (record,) = records
    assert record.levelno == logging.WARNING
    assert "HOTSPOT_RETRAIN_SKIPPED city=seattle_crime" in record.getMessage()
    assert "loads ended 2025-11-01" in record.getMessage()
