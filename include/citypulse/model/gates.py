"""Gates before training: enough records with coordinates, enough hotspots to test on.

A model trained on days where most records have no hexagon learns false zeros, and a test
window with a handful of hotspots cannot tell models apart. Both are measured per fold
(coverage in each training and test window, hotspot hex-days in each test window) against
the run's `min_coverage` and `min_test_positives`; the figures are stored with the run
whether the city passes or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pandas as pd

from citypulse.model.features import Split, Windows


@dataclass(frozen=True)
class WindowCoverage:
    """Records, and records with a hexagon, in one window; days below the threshold."""

    window: str  # e.g. "fold 3 test"
    first: date
    last: date
    records: int
    located: int
    days_below: int  # days (with records) whose own coverage is below min_coverage

    @property
    def coverage(self) -> float | None:
        return self.located / self.records if self.records else None


@dataclass(frozen=True)
class Gates:
    """The gate figures of one city's run and the thresholds they were held to."""

    min_coverage: float
    min_test_positives: int
    coverage: tuple[WindowCoverage, ...]
    test_positives: tuple[int, ...] = ()  # per fold, oldest first; empty until labelled

    def problem(self) -> str | None:
        """Why the city must not be trained, naming the measured value and the threshold (the
        worst window of coverage, the first fold short of hotspots)."""
        below = [w for w in self.coverage if (w.coverage or 0.0) < self.min_coverage]
        if below:
            worst = min(below, key=lambda w: w.coverage or 0.0)
            measured = "none" if worst.coverage is None else f"{worst.coverage:.3g}"
            return (
                f"coordinate coverage {measured} ({worst.located:,} of {worst.records:,} records "
                f"have a hexagon) in {worst.window} {worst.first}..{worst.last} is below "
                f"min_coverage {self.min_coverage:.3g} ({len(below)} of {len(self.coverage)} "
                "windows are)"
            )
        for fold, positives in enumerate(self.test_positives, start=1):
            if positives < self.min_test_positives:
                return (
                    f"{positives} hotspot hex-days in fold {fold}'s test window, fewer than "
                    f"min_test_positives {self.min_test_positives}"
                )
        return None

    def with_positives(self, splits: list[Split]) -> Gates:
        positives = tuple(int(s.test["hotspot"].sum()) for s in splits)
        return Gates(self.min_coverage, self.min_test_positives, self.coverage, positives)

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_coverage": self.min_coverage,
            "min_test_positives": self.min_test_positives,
            "coverage": [
                {
                    **asdict(w),
                    "first": w.first.isoformat(),
                    "last": w.last.isoformat(),
                    "coverage": None if w.coverage is None else round(w.coverage, 4),
                }
                for w in self.coverage
            ],
            "test_positives": list(self.test_positives),
        }


def window_coverage(
    daily: pd.DataFrame, name: str, first: date, last: date, floor: float
) -> WindowCoverage:
    days = daily[
        (daily["local_day"] >= pd.Timestamp(first)) & (daily["local_day"] <= pd.Timestamp(last))
    ]
    below = (days["located"] < floor * days["records"]).sum()
    return WindowCoverage(
        name, first, last, int(days["records"].sum()), int(days["located"].sum()), int(below)
    )


def coverage_gates(
    daily: pd.DataFrame, folds: list[Windows], min_coverage: float, min_test_positives: int
) -> Gates:
    """Coverage of every fold's training and test window from `features.daily_coverage`."""
    windows = []
    for number, fold in enumerate(folds, start=1):
        windows.append(
            window_coverage(
                daily, f"fold {number} training", fold.train_start, fold.train_end, min_coverage
            )
        )
        windows.append(
            window_coverage(
                daily, f"fold {number} test", fold.test_start, fold.test_end, min_coverage
            )
        )
    return Gates(min_coverage, min_test_positives, tuple(windows))
