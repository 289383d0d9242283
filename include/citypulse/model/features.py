"""Hex-day features of one city, from the warehouse only, and the time split.

Counts are read as the warehouse knew them at an instant (`known_counts.sql`: the as-of
day's start in a backtest); lags, rolling and long-run means come from one SQL statement
(zero-filled grid, window functions); the neighbour means, the kernel densities and the
near-repeat term use a cell -> k-ring table built once per cell with h3; calendar features
are vectorised. Every feature of day D uses counts of days before D only.

What is scored is what is published: a forecast made on an origin day O covers O .. O+6
(horizons 1..7) and reads events up to O - lag - 1 (the contract's publication lag). So the
row of day D at horizon h carries the count features of day D - h - lag + 1 (counts up to
D - h - lag), and its own day's calendar. Each fold's test window is cut into weekly origins
(its first day, then every 7 days); training rows are built the same way on the same weekly
grid, and training ends `lag` days before the fold's first origin, the newest day whose
records were published then. A fold's hexagons are those first seen by the end of its
training window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import (
    HISTORY_DAYS,
    HORIZON_DAYS,
    KDE_BANDWIDTH,
    KDE_RINGS,
    MIN_TRAIN_DAYS,
    NEAR_REPEAT_TAUS,
    WARMUP_DAYS,
    CitySkipped,
    RetrainConfig,
)
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.types import Cursor

KEY = ["h3_cell", "local_day"]
DEFAULT_HOLIDAYS = ("US", None)  # federal holidays when a contract names no calendar
CALENDAR = ["day_of_week", "is_holiday"]
# Columns of the frame that are not count features (the rest move with the horizon).
UNSHIFTED = {*KEY, "incidents", "first_seen", *CALENDAR}


@dataclass(frozen=True)
class Windows:
    """The run's days, all inclusive: warm-up, training, then a later test window; the test
    window starts `lag_days` + 1 days after training ends (the records of the days between
    were not published yet at its first origin)."""

    feature_start: date
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    lag_days: int = 0

    def __post_init__(self) -> None:
        ordered = (
            self.feature_start <= self.train_start <= self.train_end
            and self.train_end + timedelta(days=self.lag_days) < self.test_start <= self.test_end
        )
        if not ordered or self.lag_days < 0:
            raise ValueError(f"windows out of order: {self}")

    @property
    def serving_day(self) -> date:
        """The first day after the data: its features are what the forecast starts from."""
        return self.test_end + timedelta(days=1)

    @property
    def forecast_start(self) -> date:
        """The published forecast's first day (horizon 1): the data ends `lag_days` + 1 days
        before it."""
        return self.serving_day + timedelta(days=self.lag_days)

    def horizons(self, days: pd.Series) -> np.ndarray:
        """Each day's horizon (1..HORIZON_DAYS) on the weekly grid of origins from test_start."""
        offset = (days - pd.Timestamp(self.test_start)).dt.days.to_numpy()
        return np.mod(offset, HORIZON_DAYS) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_start": self.feature_start.isoformat(),
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "lag_days": self.lag_days,
        }


def plan_windows(
    first_loaded: date, last_day: date, config: RetrainConfig, lag_days: int = 0
) -> Windows:
    """Test on the last `test_days`, train on up to `training_days` ending `lag_days` before
    the test, after a warm-up; read up to HISTORY_DAYS before training for long-run means."""
    test_start = last_day - timedelta(days=config.test_days - 1)
    train_end = test_start - timedelta(days=lag_days + 1)
    wanted_start = train_end - timedelta(days=config.training_days - 1)
    # The oldest training row's features come from lag + HORIZON_DAYS - 1 days earlier.
    warmup = WARMUP_DAYS + lag_days + HORIZON_DAYS - 1
    train_start = max(wanted_start, first_loaded + timedelta(days=warmup))
    train_days = (train_end - train_start).days + 1
    if train_days < MIN_TRAIN_DAYS:
        raise CitySkipped(
            f"only {max(train_days, 0)} training days between {first_loaded} + {warmup} "
            f"warm-up days and the {config.test_days}-day test window ending {last_day} "
            f"(publication lag {lag_days} days); at least {MIN_TRAIN_DAYS} needed"
        )
    return Windows(
        feature_start=max(first_loaded, train_start - timedelta(days=HISTORY_DAYS)),
        train_start=train_start,
        train_end=train_end,
        test_start=test_start,
        test_end=last_day,
        lag_days=lag_days,
    )


def plan_folds(
    first_loaded: date, last_day: date, config: RetrainConfig, lag_days: int = 0
) -> list[Windows]:
    """`folds` consecutive test windows of `test_days` ending on `last_day`, oldest first, each
    after its own training window (rolling origin); CitySkipped if the oldest cannot train."""
    span = timedelta(days=config.test_days)
    folds = []
    for back in range(config.folds - 1, -1, -1):
        try:
            folds.append(plan_windows(first_loaded, last_day - back * span, config, lag_days))
        except CitySkipped as exc:
            raise CitySkipped(f"{config.folds} folds of {config.test_days} days: {exc}") from None
    return folds


def data_end(last_day: date, as_of: date, lag_days: int) -> date:
    """The newest day a forecast made on `as_of` may read: the data's last day, at most
    `lag_days` + 1 days before `as_of` (later days were not published yet)."""
    return min(last_day, as_of - timedelta(days=lag_days + 1))


def feature_span(folds: list[Windows]) -> Windows:
    """One window from the oldest fold's warm-up to the newest fold's test end."""
    first, last = folds[0], folds[-1]
    return Windows(
        first.feature_start,
        first.train_start,
        last.train_end,
        last.test_start,
        last.test_end,
        last.lag_days,
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
    """The SQL part: zero-filled counts with lags, rolling and long-run means, each cell's
    first day with an incident (`first_seen`), sorted."""
    cur.execute(
        render("model/hex_day_features.sql"),
        {"first_day": first_day, "last_observed": last_observed, "last_day": last_day},
    )
    columns = [d.name for d in cur.description or ()]
    frame = pd.DataFrame(cur.fetchall(), columns=columns)
    frame["local_day"] = pd.to_datetime(frame["local_day"])
    for column in (c for c in columns[2:] if c != "first_seen"):
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


def kernel_edges(cells: Iterable[str]) -> pd.DataFrame:
    """(h3_cell, neighbour, distance, weight) up to KDE_RINGS rings, Gaussian in ring distance."""
    edges = neighbours(cells, KDE_RINGS)
    edges["weight"] = np.exp(-(edges["distance"] ** 2) / (2 * KDE_BANDWIDTH**2))
    return edges


def add_kernel_density(
    frame: pd.DataFrame, source: str = "mean_28", name: str = "kernel_density"
) -> pd.DataFrame:
    """`name`: the `source` mean count of the cell and of every hexagon within KDE_RINGS
    rings, weighted by a Gaussian kernel of the ring distance (expected incidents per day);
    hexagons never seen count as zeros. `kernel_density` smooths the 28-day means, `kde_365`
    the 365-day ones."""
    edges = kernel_edges(frame["h3_cell"].unique())
    total = 1.0 + edges.groupby("h3_cell")["weight"].sum().rename("total_weight")
    values = frame[["h3_cell", "local_day", source]].rename(columns={"h3_cell": "neighbour"})
    joined = edges.merge(values, on="neighbour", how="inner")
    joined["weighted"] = joined[source] * joined["weight"]
    around = joined.groupby(KEY, sort=False)["weighted"].sum().rename("around").reset_index()
    merged = frame.merge(around, on=KEY, how="left").join(total, on="h3_cell")
    own = merged[source]
    merged[name] = (own + merged["around"].fillna(0.0)) / merged["total_weight"]
    merged[name] = merged[name].where(own.notna())
    return merged.drop(columns=["around", "total_weight"]).sort_values(KEY, ignore_index=True)


def add_near_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    """`nr_<tau>` for each NEAR_REPEAT_TAUS: the exponentially weighted mean (decay `tau`
    days) of the kernel-smoothed daily counts before the day (the same Gaussian ring kernel
    as `kernel_density`), in incidents per day: the self-exciting part of the near-repeat
    baseline. Vectorised over a cells x days matrix; days without a count add nothing."""
    from scipy.signal import lfilter

    frame = frame.sort_values(KEY, ignore_index=True)
    cells = frame["h3_cell"].unique()
    n_days = frame["local_day"].nunique()
    if len(frame) != len(cells) * n_days:
        raise ValueError("near-repeat needs the full hexagon x day grid")
    counts = np.nan_to_num(frame["incidents"].to_numpy(dtype=float)).reshape(len(cells), n_days)
    index = {cell: i for i, cell in enumerate(cells)}
    edges = kernel_edges(cells)
    total = 1.0 + edges.groupby("h3_cell")["weight"].sum().reindex(cells).fillna(0.0).to_numpy()
    inside = edges[edges["neighbour"].isin(index)]
    kernel = np.eye(len(cells))
    rows = inside["h3_cell"].map(index).to_numpy(dtype=int)
    kernel[rows, inside["neighbour"].map(index).to_numpy(dtype=int)] = inside["weight"].to_numpy()
    smoothed = (kernel @ counts) / total[:, None]
    before = np.concatenate([np.zeros((len(cells), 1)), smoothed[:, :-1]], axis=1)
    for tau in NEAR_REPEAT_TAUS:
        decay = math.exp(-1.0 / tau)
        frame[f"nr_{tau}"] = lfilter([1 - decay], [1, -decay], before, axis=1).ravel()
    return frame


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
    """Every hex-day of the windows plus the serving day, with all features of the day
    itself (counts before it), sorted, from the records known at `known_at` (None: now)."""
    known_counts(cur, city, h3_column, windows.feature_start, windows.test_end, known_at)
    frame = hex_day_counts(cur, windows.feature_start, windows.test_end, windows.serving_day)
    frame["first_seen"] = pd.to_datetime(frame["first_seen"])
    frame = add_near_repeat(add_ring_features(frame))
    frame = add_kernel_density(frame)
    frame = add_kernel_density(frame, "mean_365", "kde_365")
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


def universe(frame: pd.DataFrame, windows: Windows) -> np.ndarray:
    """The fold's hexagons: those with an incident on or before its training window's end."""
    seen = frame["first_seen"] <= pd.Timestamp(windows.train_end)
    return np.sort(frame.loc[seen, "h3_cell"].unique())


def as_published(
    frame: pd.DataFrame, windows: Windows, first: date, last: date, cells: np.ndarray
) -> pd.DataFrame:
    """Rows of `cells` on days `first` .. `last`, each with the count features it would have
    had when forecast: those of day D - horizon - lag + 1, with its own calendar, `horizon`
    and `origin` (the day the forecast was made)."""
    rows = between(frame, first, last)
    rows = rows.loc[rows["h3_cell"].isin(cells), [*KEY, "incidents", *CALENDAR]]
    horizon = windows.horizons(rows["local_day"])
    rows["horizon"] = horizon
    rows["origin"] = rows["local_day"] - pd.to_timedelta(horizon - 1, unit="D")
    rows["source_day"] = rows["local_day"] - pd.to_timedelta(
        horizon + windows.lag_days - 1, unit="D"
    )
    shifted = [c for c in frame.columns if c not in UNSHIFTED]
    source = frame[["h3_cell", "local_day", *shifted]].rename(columns={"local_day": "source_day"})
    merged = rows.merge(source, on=["h3_cell", "source_day"], how="left")
    return merged.drop(columns="source_day").sort_values(KEY, ignore_index=True)


@dataclass
class Split:
    """Training and test rows with their labels, and the threshold that made the labels."""

    train: pd.DataFrame
    test: pd.DataFrame
    threshold: float

    @property
    def cells(self) -> int:
        """The fold's hexagons (its area, in cells)."""
        return int(self.test["h3_cell"].nunique())


def split(frame: pd.DataFrame, windows: Windows, quantile: float) -> Split:
    """Time split as published (`as_published`) over the fold's hexagons (`universe`); the
    threshold is fixed on training days only, then labels both sides."""
    cells = universe(frame, windows)
    train = as_published(frame, windows, windows.train_start, windows.train_end, cells)
    test = as_published(frame, windows, windows.test_start, windows.test_end, cells)
    threshold = label_threshold(train["incidents"], quantile)
    for part in (train, test):
        part["hotspot"] = (part["incidents"] >= threshold).astype(int)
    return Split(train, test, threshold)
