"""Hex-day features of one city, from the warehouse only, and the time split.

Counts are read as the warehouse knew them at an instant (`known_counts.sql`: the as-of
day's start in a backtest); lags and rolling means come from one SQL statement (zero-filled
grid, window functions); the neighbour means and the kernel density join a cell -> k-ring
table built once per cell with h3; calendar features are vectorised. Every feature of day D
uses counts of days before D only. A run evaluates `folds` consecutive test windows
(rolling origin), each after its own training window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import (
    KDE_BANDWIDTH,
    KDE_RINGS,
    MIN_TRAIN_DAYS,
    WARMUP_DAYS,
    CitySkipped,
    RetrainConfig,
)
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.types import Cursor

KEY = ["h3_cell", "local_day"]
DEFAULT_HOLIDAYS = ("US", None)  # federal holidays when a contract names no calendar


@dataclass(frozen=True)
class Windows:
    """The run's days, all inclusive: warm-up, training, then a strictly later test window."""

    feature_start: date
    train_start: date
    train_end: date
    test_start: date
    test_end: date

    def __post_init__(self) -> None:
        ordered = (
            self.feature_start <= self.train_start <= self.train_end
            and self.train_end < self.test_start <= self.test_end
        )
        if not ordered:
            raise ValueError(f"windows out of order: {self}")

    @property
    def serving_day(self) -> date:
        """The first day after the data: its features are what the forecast starts from."""
        return self.test_end + timedelta(days=1)

    def as_dict(self) -> dict[str, str]:
        return {name: value.isoformat() for name, value in asdict(self).items()}


def plan_windows(first_loaded: date, last_day: date, config: RetrainConfig) -> Windows:
    """Test on the last `test_days`, train on up to `training_days` before, after a warm-up."""
    test_start = last_day - timedelta(days=config.test_days - 1)
    train_end = test_start - timedelta(days=1)
    wanted_start = train_end - timedelta(days=config.training_days - 1)
    train_start = max(wanted_start, first_loaded + timedelta(days=WARMUP_DAYS))
    train_days = (train_end - train_start).days + 1
    if train_days < MIN_TRAIN_DAYS:
        raise CitySkipped(
            f"only {max(train_days, 0)} training days between {first_loaded} + {WARMUP_DAYS} "
            f"warm-up days and the {config.test_days}-day test window ending {last_day}; "
            f"at least {MIN_TRAIN_DAYS} needed"
        )
    return Windows(
        feature_start=max(first_loaded, train_start - timedelta(days=WARMUP_DAYS)),
        train_start=train_start,
        train_end=train_end,
        test_start=test_start,
        test_end=last_day,
    )


def plan_folds(first_loaded: date, last_day: date, config: RetrainConfig) -> list[Windows]:
    """`folds` consecutive test windows of `test_days` ending on `last_day`, oldest first, each
    after its own training window (rolling origin); CitySkipped if the oldest cannot train."""
    span = timedelta(days=config.test_days)
    folds = []
    for back in range(config.folds - 1, -1, -1):
        try:
            folds.append(plan_windows(first_loaded, last_day - back * span, config))
        except CitySkipped as exc:
            raise CitySkipped(f"{config.folds} folds of {config.test_days} days: {exc}") from None
    return folds


def feature_span(folds: list[Windows]) -> Windows:
    """One window from the oldest fold's warm-up to the newest fold's test end."""
    first, last = folds[0], folds[-1]
    return Windows(
        first.feature_start, first.train_start, last.train_end, last.test_start, last.test_end
    )


def holiday_dates(contract: Any, years: Iterable[int]) -> set[date]:
    """Public holidays of the contract's calendar (`holidays: {country, subdiv}` if it has one,
    else US federal ones), from the maintained `holidays` package."""
    import holidays

    calendar = getattr(contract, "holidays", None)
    country, subdiv = DEFAULT_HOLIDAYS
    if calendar is not None:
        country = _field(calendar, "country") or country
        subdiv = _field(calendar, "subdiv")
    return set(holidays.country_holidays(country, subdiv=subdiv, years=sorted(set(years))))


def _field(calendar: Any, name: str) -> Any:
    return calendar.get(name) if isinstance(calendar, dict) else getattr(calendar, name, None)


def known_counts(
    cur: Cursor,
    city: str,
    h3_column: str,
    first_day: date,
    last_observed: date,
    known_at: datetime | None,
) -> None:
    """Keep the city's records per day and hexagon as known at `known_at` (None: now) in a
    temporary table, for `hex_day_counts` and `daily_coverage` in the same transaction."""
    cur.execute(
        render("model/known_counts.sql", cell=h3_column),
        {
            "city": city,
            "first_day": first_day,
            "last_observed": last_observed,
            "known_at": known_at or datetime.now(UTC),
        },
    )


def daily_coverage(cur: Cursor) -> pd.DataFrame:
    """(local_day, records, located) of the counts `known_counts` kept, days with records."""
    cur.execute(render("model/daily_coverage.sql"))
    frame = pd.DataFrame(cur.fetchall(), columns=["local_day", "records", "located"])
    frame["local_day"] = pd.to_datetime(frame["local_day"])
    return frame.astype({"records": int, "located": "Int64"}).fillna({"located": 0})


def hex_day_counts(
    cur: Cursor, first_day: date, last_observed: date, last_day: date
) -> pd.DataFrame:
    """The SQL part: zero-filled counts with lags, rolling and long-run means, sorted."""
    cur.execute(
        render("model/hex_day_features.sql"),
        {"first_day": first_day, "last_observed": last_observed, "last_day": last_day},
    )
    columns = [d.name for d in cur.description or ()]
    frame = pd.DataFrame(cur.fetchall(), columns=columns)
    frame["local_day"] = pd.to_datetime(frame["local_day"])
    for column in columns[2:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def neighbours(cells: Iterable[str], rings: int = 1) -> pd.DataFrame:
    """(h3_cell, neighbour, distance) for rings 1 .. `rings` of each cell, without the cell."""
    import h3

    pairs = [
        (cell, other, distance)
        for cell in sorted(set(cells))
        for distance in range(1, rings + 1)
        for other in sorted(h3.grid_ring(cell, distance))
    ]
    return pd.DataFrame(pairs, columns=["h3_cell", "neighbour", "distance"])


def add_ring_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean of the neighbours' `lag_1` and `mean_7`; neighbours never seen count as zeros."""
    edges = neighbours(frame["h3_cell"].unique()).drop(columns="distance")
    ring_size = edges.groupby("h3_cell").size().rename("ring_size")
    values = frame[["h3_cell", "local_day", "lag_1", "mean_7"]].rename(
        columns={"h3_cell": "neighbour"}
    )
    joined = edges.merge(values, on="neighbour", how="inner")
    sums = joined.groupby(KEY, sort=False)[["lag_1", "mean_7"]].sum(min_count=1)
    sums = sums.join(ring_size, on="h3_cell")
    ring = pd.DataFrame(
        {
            "ring_lag_1": sums["lag_1"] / sums["ring_size"],
            "ring_mean_7": sums["mean_7"] / sums["ring_size"],
        }
    ).reset_index()
    merged = frame.merge(ring, on=KEY, how="left")
    # A cell whose neighbours had no incidents in the window has ring means of real zeros,
    # except on the first day, where nothing before is known (lag_1 is NULL there too).
    known = merged["lag_1"].notna()
    for column in ("ring_lag_1", "ring_mean_7"):
        merged[column] = merged[column].where(~(known & merged[column].isna()), 0.0)
    return merged.sort_values(KEY, ignore_index=True)


def add_kernel_density(frame: pd.DataFrame) -> pd.DataFrame:
    """`kernel_density`: the 28-day mean count of the cell and of every hexagon within
    KDE_RINGS rings, weighted by a Gaussian kernel of the ring distance (expected incidents
    per day); hexagons never seen count as zeros."""
    edges = neighbours(frame["h3_cell"].unique(), KDE_RINGS)
    edges["weight"] = np.exp(-(edges["distance"] ** 2) / (2 * KDE_BANDWIDTH**2))
    total = 1.0 + edges.groupby("h3_cell")["weight"].sum().rename("total_weight")
    values = frame[["h3_cell", "local_day", "mean_28"]].rename(columns={"h3_cell": "neighbour"})
    joined = edges.merge(values, on="neighbour", how="inner")
    joined["weighted"] = joined["mean_28"] * joined["weight"]
    around = joined.groupby(KEY, sort=False)["weighted"].sum().rename("around").reset_index()
    merged = frame.merge(around, on=KEY, how="left").join(total, on="h3_cell")
    own = merged["mean_28"]
    merged["kernel_density"] = (own + merged["around"].fillna(0.0)) / merged["total_weight"]
    merged["kernel_density"] = merged["kernel_density"].where(own.notna())
    return merged.drop(columns=["around", "total_weight"]).sort_values(KEY, ignore_index=True)


def add_calendar(frame: pd.DataFrame, holidays: set[date]) -> pd.DataFrame:
    """Day of week (Monday 0) and public holiday (0/1) of each row's local day."""
    days = frame["local_day"].dt
    frame["day_of_week"] = days.dayofweek.astype(float)
    holiday_days = pd.to_datetime(sorted(holidays)) if holidays else pd.DatetimeIndex([])
    frame["is_holiday"] = frame["local_day"].isin(holiday_days).astype(float)
    return frame


def build_features(
    cur: Cursor,
    city: str,
    h3_column: str,
    windows: Windows,
    holidays: set[date],
    known_at: datetime | None = None,
) -> pd.DataFrame:
    """Every hex-day of the windows plus the serving day, with all features, sorted, from the
    records known at `known_at` (None: now)."""
    known_counts(cur, city, h3_column, windows.feature_start, windows.test_end, known_at)
    frame = hex_day_counts(cur, windows.feature_start, windows.test_end, windows.serving_day)
    frame = add_kernel_density(add_ring_features(frame))
    return add_calendar(frame, holidays)


def label_threshold(train_counts: pd.Series, quantile: float) -> float:
    """The hotspot threshold: the training days' `quantile` of hex-day counts, at least 1."""
    value = float(np.quantile(train_counts.to_numpy(dtype=float), quantile, method="higher"))
    return float(max(1, math.ceil(value)))


def between(frame: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Rows of local days `first` .. `last` (inclusive)."""
    days = frame["local_day"]
    mask = (days >= pd.Timestamp(first)) & (days <= pd.Timestamp(last))
    return frame.loc[mask].reset_index(drop=True)


@dataclass
class Split:
    """Training and test rows with their labels, and the threshold that made the labels."""

    train: pd.DataFrame
    test: pd.DataFrame
    threshold: float


def split(frame: pd.DataFrame, windows: Windows, quantile: float) -> Split:
    """Time split; the threshold is fixed on training days only, then labels both sides."""
    train = between(frame, windows.train_start, windows.train_end)
    test = between(frame, windows.test_start, windows.test_end)
    threshold = label_threshold(train["incidents"], quantile)
    for part in (train, test):
        part["hotspot"] = (part["incidents"] >= threshold).astype(int)
    return Split(train, test, threshold)
