"""A backtest as of a past day uses only what was known then: records dated on or after that
day, edits made after it (coordinates withdrawn, as the real Chicago portal did to 605
records) and deletions after it change no feature, no gate figure and no metric; a run
without `as_of` does see them. A low-coverage city is skipped naming the measured value and
the threshold, and the figures are stored.

Real parts: PostgreSQL, the load path (typing, COPY + upsert with history), the views.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import query
from helpers import by_id

pytestmark = pytest.mark.integration

FIRST, LAST = date(2025, 6, 2), date(2025, 9, 28)
AS_OF = date(2025, 9, 1)
CONF = {"training_days": 28, "test_days": 7, "folds": 3, "model_kind": "logistic_regression"}
RECORDS_PER_DAY = 60


@pytest.fixture(scope="module")
def loaded(module_warehouse: str, contracts: list[Any]) -> Iterator[tuple[str, Any]]:
    from citypulse_dev.sample_history import load_history

    contract = by_id(contracts, "chicago_crime")
    load_history([contract], FIRST, LAST, dsn=module_warehouse, records_per_day=RECORDS_PER_DAY)
    yield module_warehouse, contract


def config(**overrides: Any) -> Any:
    from citypulse.model.config import RetrainConfig

    return RetrainConfig(**{**CONF, **overrides})


def train(dsn: str, contract: Any, run_id: str, **overrides: Any) -> dict[str, Any]:
    """What the DAG's check_freshness and train tasks do for one city."""
    from citypulse.model.retrain import fresh_city, reference_for, train_city

    settings = config(**overrides)
    reference = reference_for(contract, settings, datetime(2025, 9, 29, 12, tzinfo=UTC))
    freshness = fresh_city(contract, settings, reference, dsn)
    return train_city(contract, settings, freshness, run_id, dsn)


def known(dsn: str, contract: Any, known_at: datetime | None) -> tuple[Any, Any]:
    from citypulse.model import features
    from citypulse.model.retrain import load_known

    folds = features.plan_folds(FIRST, AS_OF - timedelta(days=1), config())
    return load_known(contract, features.feature_span(folds), config(), known_at, dsn)


def metrics_of(dsn: str, run_id: str) -> dict[str, Any]:
    rows = query(
        dsn, "SELECT model_kind, metrics FROM citypulse.model_runs WHERE dag_run_id = %s", (run_id,)
    )
    return dict(rows)


def change_the_past(dsn: str, contract: Any, tmp: Path) -> None:
    """After the as-of day: later records arrive, earlier ones lose coordinates, some go."""
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect
    from citypulse_dev.sample_history import load_days, well_formed_records

    with connect(dsn) as conn:  # records dated on and after the as-of day, many of them
        load_days(conn, contract, AS_OF, AS_OF + timedelta(days=6), seed=99, records_per_day=400)
    edited_first, edited_last = AS_OF - timedelta(days=20), AS_OF - timedelta(days=1)
    records = well_formed_records(
        contract, edited_first, edited_last, seed=7, records_per_day=RECORDS_PER_DAY
    )
    for record in records[::2]:  # the portal withdraws half of their coordinates
        for field in ("latitude", "longitude", "location"):
            record.pop(field, None)
    batch = type_records(contract, records)
    window = window_for_dates(edited_first.isoformat(), edited_last.isoformat(), contract.timezone)
    with connect(dsn) as conn:
        frame = batch.frame[~batch.rejected_mask]
        load_typed_rows(conn, contract, frame, "edit-run", window, StorageRoot(tmp.as_uri()))
    query(
        dsn,
        "UPDATE citypulse.chicago_crime SET cp_deleted_at = now() "
        "WHERE id IN (SELECT id FROM citypulse.chicago_crime WHERE date < %s "
        "ORDER BY id LIMIT 200)",
        (AS_OF - timedelta(days=3),),
    )


def test_a_past_as_of_uses_no_later_data(loaded: tuple[str, Any], tmp_path: Path) -> None:
    import pandas as pd

    from citypulse.model.freshness import as_of_instant

    dsn, contract = loaded
    instant = as_of_instant(AS_OF, contract.timezone)
    before = train(dsn, contract, "backtest-before", as_of=AS_OF)
    frame_before, coverage_before = known(dsn, contract, instant)
    current_before, _ = known(dsn, contract, None)

    change_the_past(dsn, contract, tmp_path)
    (history,) = query(dsn, "SELECT count(*) FROM citypulse.chicago_crime_history")
    assert history[0] > 0  # the edits went through the load path and kept the old versions

    after = train(dsn, contract, "backtest-after", as_of=AS_OF)
    frame_after, coverage_after = known(dsn, contract, instant)
    pd.testing.assert_frame_equal(frame_before, frame_after)
    pd.testing.assert_frame_equal(coverage_before, coverage_after)
    assert frame_after["local_day"].max() < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    # Chicago's data as it stood on 09-01 ends 8 days before (its 7-day publication lag).
    assert before["windows"] == after["windows"] and before["windows"]["test_end"] == "2025-08-24"
    assert metrics_of(dsn, "backtest-before") == metrics_of(dsn, "backtest-after")
    assert (
        query(
            dsn,
            "SELECT figures FROM citypulse.retrain_gates WHERE dag_run_id IN "
            "('backtest-before', 'backtest-after') GROUP BY figures",
        ).__len__()
        == 1
    )
    # Read as of now, the same days did change: the test would see a leak.
    current_after, _ = known(dsn, contract, None)
    assert not current_before.equals(current_after)


def test_a_low_coverage_city_is_skipped_with_the_figures(loaded: tuple[str, Any]) -> None:
    from citypulse.model.config import CitySkipped

    dsn, contract = loaded
    with pytest.raises(CitySkipped) as skipped:
        train(dsn, contract, "strict-coverage", as_of=AS_OF, min_coverage=0.999)
    message = str(skipped.value)
    assert "coordinate coverage 0.9" in message and "below min_coverage 0.999" in message
    ((passed, reason, figures),) = query(
        dsn,
        "SELECT passed, reason, figures FROM citypulse.retrain_gates WHERE dag_run_id = %s",
        ("strict-coverage",),
    )
    assert passed is False and reason in message
    assert figures["min_coverage"] == 0.999 and len(figures["coverage"]) == 6
    assert all(0.9 < w["coverage"] < 1 for w in figures["coverage"])
    assert query(
        dsn, "SELECT count(*) FROM citypulse.model_runs WHERE dag_run_id = 'strict-coverage'"
    ) == [(0,)]


def test_too_few_test_positives_skips_the_city(loaded: tuple[str, Any]) -> None:
    from citypulse.model.config import CitySkipped

    dsn, contract = loaded
    with pytest.raises(CitySkipped, match="hotspot hex-days in fold 1's test window, fewer than "
                       "min_test_positives 100000"):  # fmt: skip
        train(dsn, contract, "few-positives", as_of=AS_OF, min_test_positives=100_000)
