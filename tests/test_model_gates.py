"""The gates measure coverage per fold window from the daily counts and name the worst window's
figure and the threshold; a test window short of hotspots is named by its fold."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

FIRST = date(2022, 1, 1)


def daily(located_share: dict[int, float], days: int = 120, records: int = 10) -> Any:
    """`records` a day; from each day offset in `located_share` on, that share is located."""
    import pandas as pd

    rows = []
    share = 1.0
    for offset in range(days):
        share = located_share.get(offset, share)
        rows.append((pd.Timestamp(FIRST + timedelta(days=offset)), records, round(records * share)))
    return pd.DataFrame(rows, columns=["local_day", "records", "located"])


def folds() -> list[Any]:
    from citypulse.model.config import RetrainConfig
    from citypulse.model.features import plan_folds

    config = RetrainConfig(training_days=28, test_days=14, folds=3)
    return plan_folds(FIRST, FIRST + timedelta(days=119), config)


def test_full_coverage_passes_and_every_window_is_measured() -> None:
    from citypulse.model.gates import coverage_gates

    gates = coverage_gates(daily({}), folds(), 0.8, 10)
    assert gates.problem() is None
    assert [w.window for w in gates.coverage] == [
        "fold 1 training", "fold 1 test", "fold 2 training", "fold 2 test",
        "fold 3 training", "fold 3 test",
    ]  # fmt: skip
    assert all(w.coverage == 1.0 and w.days_below == 0 for w in gates.coverage)
    assert gates.coverage[1].records == 14 * 10


def test_the_worst_window_is_named_with_its_figure_and_the_threshold() -> None:
    from citypulse.model.gates import coverage_gates

    # The last 10 days lose most coordinates: only the newest fold's test window suffers.
    gates = coverage_gates(daily({110: 0.1}), folds(), 0.8, 10)
    newest = gates.coverage[-1]
    assert newest.days_below == 10 and newest.coverage == (4 * 10 + 10 * 1) / 140
    assert gates.problem() == (
        "coordinate coverage 0.357 (50 of 140 records have a hexagon) in fold 3 test "
        "2022-04-17..2022-04-30 is below min_coverage 0.8 (1 of 6 windows are)"
    )


def test_a_test_window_short_of_hotspots_is_named() -> None:
    import pandas as pd

    from citypulse.model.gates import coverage_gates

    gates = coverage_gates(daily({}), folds(), 0.8, 10)
    splits = [SimpleNamespace(test=pd.DataFrame({"hotspot": [1] * n})) for n in (12, 9, 30)]
    checked = gates.with_positives(splits)
    assert checked.test_positives == (12, 9, 30)
    assert checked.problem() == (
        "9 hotspot hex-days in fold 2's test window, fewer than min_test_positives 10"
    )
    assert checked.as_dict()["test_positives"] == [12, 9, 30]
