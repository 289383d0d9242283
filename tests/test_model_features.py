"""Features never look at the day they describe, or after it: for a known hex-day every feature
equals what the counts before that day give, the hotspot threshold comes from training days
only, and test days come strictly after training days.

The warehouse's `incident_versions` is replaced by a table of hand-made records, so every
expected value can be computed here from plain Python dictionaries.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from helpers import write_incident_counts

CITY = "test_city"
FIRST = date(2025, 3, 3)  # a Monday
DAYS = 70
LAST = FIRST + timedelta(days=DAYS - 1)
CENTRE = "872a100d6ffffff"  # Midtown Manhattan, resolution 7


def neighbours_of(cell: str) -> list[str]:
    import h3

    return sorted(h3.grid_ring(cell, 1))


def make_counts(seed: int = 3) -> dict[tuple[str, date], int]:
    """Counts for the centre cell, four of its six neighbours and one cell far away; about a
    third of the hex-days have no incidents (and so no record)."""
    rng = random.Random(seed)
    cells = [CENTRE, *neighbours_of(CENTRE)[:4], "872a10725ffffff"]
    counts = {}
    for offset in range(DAYS):
        day = FIRST + timedelta(days=offset)
        for rank, cell in enumerate(cells):
            value = max(0, round(rng.gauss(6 - rank, 3)))
            if value:
                counts[(cell, day)] = value
    return counts


def write_counts(dsn: str, counts: dict[tuple[str, date], int]) -> None:
    """Stand in for the warehouse's records with the given counts per (cell, day)."""
    # Two resolution-8 children per count, to check that the r7 sum is taken.
    rows: list[tuple[str, str | None, str | None, date, int]] = []
    for (cell, day), n in counts.items():
        rows.append((CITY, f"r8a-{cell}", cell, day, n - n // 2))
        if n // 2:
            rows.append((CITY, f"r8b-{cell}", cell, day, n // 2))
    rows.append(("other_city", "x", CENTRE, FIRST, 1000))  # another city never leaks in
    write_incident_counts(dsn, rows)


@pytest.fixture
def counts_db(fresh_warehouse: str) -> Iterator[tuple[str, dict[tuple[str, date], int]]]:
    counts = make_counts()
    write_counts(fresh_warehouse, counts)
    yield fresh_warehouse, counts


def config(**overrides: Any) -> Any:
    from citypulse.model.config import RetrainConfig

    return RetrainConfig(**{"training_days": 28, "test_days": 14, **overrides})


def build(dsn: str, windows: Any, holidays: set[date] | None = None) -> Any:
    import psycopg2

    from citypulse.model.features import build_features

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        frame = build_features(cur, CITY, "h3_r7", windows, holidays or set())
    conn.close()
    return frame


def count(counts: dict[tuple[str, date], int], cell: str, day: date) -> int:
    return counts.get((cell, day), 0)


def expected_features(
    counts: dict[tuple[str, date], int], cell: str, day: date, feature_start: date
) -> dict[str, float]:
    """Every feature of (cell, day) computed from the counts of earlier days only."""

    def before(n: int, of: str = cell) -> list[int]:
        return [count(counts, of, day - timedelta(days=k)) for k in range(1, n + 1)]

    history = (day - feature_start).days
    ring = neighbours_of(cell)
    return {
        "lag_1": before(1)[0],
        "lag_7": before(7)[-1],
        "mean_7": sum(before(7)) / 7,
        "mean_28": sum(before(28)) / 28,
        "hex_mean": sum(before(history)) / history,
        "ring_lag_1": sum(before(1, n)[0] for n in ring) / len(ring),
        "ring_mean_7": sum(sum(before(7, n)) / 7 for n in ring) / len(ring),
        "day_of_week": day.weekday(),
    }


def row_of(frame: Any, cell: str, day: date) -> Any:
    import pandas as pd

    rows = frame[(frame["h3_cell"] == cell) & (frame["local_day"] == pd.Timestamp(day))]
    assert len(rows) == 1
    return rows.iloc[0]


def test_windows_follow_each_other_in_time() -> None:
    from citypulse.model.features import plan_windows

    windows = plan_windows(FIRST, LAST, config())
    assert windows.test_end == LAST
    assert (windows.test_end - windows.test_start).days + 1 == 14
    assert windows.train_end == windows.test_start - timedelta(days=1)  # no publication lag
    # The oldest training row at horizon 7 reads day - 6's features, after a 28-day warm-up.
    assert windows.train_start == FIRST + timedelta(days=28 + 6)
    assert windows.feature_start == FIRST  # long-run means read back to the first loaded day
    assert windows.serving_day == LAST + timedelta(days=1) == windows.forecast_start


def test_short_history_shrinks_training_then_skips() -> None:
    from citypulse.model.config import CitySkipped
    from citypulse.model.features import plan_windows

    windows = plan_windows(FIRST + timedelta(days=7), LAST, config())
    assert windows.train_start == FIRST + timedelta(days=7 + 34)  # after a full warm-up
    with pytest.raises(CitySkipped, match="training days"):
        plan_windows(FIRST + timedelta(days=30), LAST, config())


@pytest.mark.parametrize("offset", [28, 41, 56, 69])  # first and last train day, two test days
def test_every_feature_equals_what_earlier_counts_give(
    counts_db: tuple[str, dict[tuple[str, date], int]], offset: int
) -> None:
    from citypulse.model.features import plan_windows

    dsn, counts = counts_db
    windows = plan_windows(FIRST, LAST, config())
    frame = build(dsn, windows, holidays={FIRST + timedelta(days=offset)})
    day = FIRST + timedelta(days=offset)
    row = row_of(frame, CENTRE, day)
    for name, value in expected_features(counts, CENTRE, day, windows.feature_start).items():
        assert row[name] == pytest.approx(value), name
    assert row["is_holiday"] == 1.0
    assert row["incidents"] == count(counts, CENTRE, day)


def test_changing_the_day_and_later_days_changes_no_feature_of_the_day(
    counts_db: tuple[str, dict[tuple[str, date], int]],
) -> None:
    from citypulse.model.config import FEATURES
    from citypulse.model.features import plan_windows

    dsn, counts = counts_db
    windows = plan_windows(FIRST, LAST, config())
    day = windows.test_start
    before = build(dsn, windows)
    changed = {
        key: (500 if key[1] >= day else n) for key, n in counts.items()
    }  # the day itself and everything after it become huge
    for cell in [CENTRE, *neighbours_of(CENTRE)]:
        changed[(cell, day)] = 500
    write_counts(dsn, changed)
    after = build(dsn, windows)
    for cell in sorted(set(before["h3_cell"])):
        old, new = row_of(before, cell, day), row_of(after, cell, day)
        assert [old[f] for f in FEATURES] == [new[f] for f in FEATURES], cell
    assert row_of(after, CENTRE, day)["incidents"] == 500


def test_hex_days_without_incidents_are_real_zeros(
    counts_db: tuple[str, dict[tuple[str, date], int]],
) -> None:
    import pandas as pd

    from citypulse.model.features import plan_windows

    dsn, counts = counts_db
    windows = plan_windows(FIRST, LAST, config())
    frame = build(dsn, windows)
    cells = {cell for cell, _ in counts}
    days = (windows.serving_day - windows.feature_start).days + 1
    assert len(frame) == len(cells) * days
    observed = frame[frame["local_day"] <= pd.Timestamp(LAST)]
    assert observed["incidents"].notna().all()
    assert observed["incidents"].sum() == sum(counts.values())
    assert (observed["incidents"] == 0).sum() == len(cells) * DAYS - len(counts)
    serving = frame[frame["local_day"] == pd.Timestamp(windows.serving_day)]
    assert serving["incidents"].isna().all() and serving["lag_1"].notna().all()
    assert CENTRE in set(frame["h3_cell"]) and "x" not in set(frame["h3_cell"])


def test_threshold_uses_training_days_only(
    counts_db: tuple[str, dict[tuple[str, date], int]],
) -> None:
    import numpy as np

    from citypulse.model.features import plan_windows, split

    dsn, counts = counts_db
    windows = plan_windows(FIRST, LAST, config())
    first = split(build(dsn, windows), windows, 0.9)
    train_days = [
        windows.train_start + timedelta(days=k)
        for k in range((windows.train_end - windows.train_start).days + 1)
    ]
    cells = sorted({cell for cell, _ in counts})
    train_counts = [count(counts, c, d) for c in cells for d in train_days]
    assert first.threshold == max(1, float(np.quantile(train_counts, 0.9, method="higher")))
    # Outsized test days and warm-up days do not move the threshold.
    outsized = {
        key: (n * 50 if not windows.train_start <= key[1] <= windows.train_end else n)
        for key, n in counts.items()
    }
    write_counts(dsn, outsized)
    second = split(build(dsn, windows), windows, 0.9)
    assert second.threshold == first.threshold
    assert second.test["hotspot"].sum() > first.test["hotspot"].sum()
    assert second.train["local_day"].max() < second.test["local_day"].min()
    assert set(second.train["local_day"].dt.date) == set(train_days)
    assert second.test["local_day"].min().date() == windows.test_start


def test_holiday_calendar_from_the_contract_or_us_federal() -> None:
    from citypulse.model.features import holiday_dates

    federal = holiday_dates(SimpleNamespace(), [2025])
    new_york = holiday_dates(SimpleNamespace(holidays={"country": "US", "subdiv": "NY"}), [2025])
    as_model = holiday_dates(
        SimpleNamespace(holidays=SimpleNamespace(country="US", subdiv="IL")), [2025]
    )
    assert date(2025, 7, 4) in federal and date(2025, 7, 4) in new_york
    assert date(2025, 2, 12) in new_york and date(2025, 2, 12) not in federal  # Lincoln's
    assert date(2025, 3, 3) in as_model  # Casimir Pulaski Day


def test_no_hexagon_first_seen_after_the_training_window_enters_the_fold(
    counts_db: tuple[str, dict[tuple[str, date], int]],
) -> None:
    """A hexagon whose first incident falls after the fold's training window is not part of
    the fold's area (it would tell the past where the future's incidents are)."""
    from citypulse.model.features import plan_windows, split

    dsn, counts = counts_db
    windows = plan_windows(FIRST, LAST, config())
    seen_last_training_day, seen_first_test_day = "872a10721ffffff", "872a10723ffffff"
    write_counts(
        dsn,
        {
            **counts,
            (seen_last_training_day, windows.train_end): 2,
            (seen_first_test_day, windows.test_start): 9,
            (seen_first_test_day, windows.test_end): 9,
        },
    )
    data = split(build(dsn, windows), windows, 0.9)
    for part in (data.train, data.test):
        cells = set(part["h3_cell"])
        assert seen_last_training_day in cells and seen_first_test_day not in cells
    assert data.cells == len(set(data.train["h3_cell"])) == 7


def test_a_7_day_horizon_backtest_with_a_lag_uses_no_record_published_after_its_origin(
    counts_db: tuple[str, dict[tuple[str, date], int]],
) -> None:
    """Lag 7: a forecast made on day O reads events up to O - 8. Every record dated from
    O - 7 on (unpublished at O) is changed, and a hexagon is added: the fold's training rows,
    threshold and every model's scores for O .. O+6 stay exactly the same."""
    import numpy as np
    import pandas as pd

    from citypulse.model.backtest import evaluate_fold
    from citypulse.model.features import plan_windows, split

    dsn, counts = counts_db
    settings = config(training_days=14, test_days=7, model_kind="logistic_regression")
    windows = plan_windows(FIRST, LAST, settings, lag_days=7)
    origin = windows.test_start
    assert windows.train_end == origin - timedelta(days=8)

    def backtest() -> Any:
        data = split(build(dsn, windows), windows, 0.9)
        return data, evaluate_fold(data, windows, settings)

    before, scored_before = backtest()
    assert sorted(before.test["horizon"].unique()) == list(range(1, 8))
    assert (before.test["origin"] == pd.Timestamp(origin)).all()
    unpublished = origin - timedelta(days=7)
    changed = {key: (n + 7 if key[1] >= unpublished else n) for key, n in counts.items()} | {
        ("872a10723ffffff", day): 5 for day in (unpublished, origin, windows.test_end)
    }
    changed |= {(CENTRE, unpublished + timedelta(days=k)): 30 for k in range(14)}
    write_counts(dsn, changed)
    after, scored_after = backtest()
    assert after.threshold == before.threshold
    pd.testing.assert_frame_equal(after.train, before.train)
    inputs = [c for c in before.test.columns if c not in ("incidents", "hotspot")]
    pd.testing.assert_frame_equal(after.test[inputs], before.test[inputs])
    assert not after.test["incidents"].equals(before.test["incidents"])  # the future did change
    for kind, fit in scored_before.fits.items():
        np.testing.assert_array_equal(scored_after.fits[kind].test_score, fit.test_score)
