"""Rolling-origin evaluation: every model trained and tested on each fold, then summarised.

Fold k trains on the days before its test window and is tested on `test_days` days; the
folds' test windows follow each other up to the last known day, so each metric gets a mean
and a spread across folds instead of one number from one window. Baselines are scored by
their rule; every model's flag threshold is tuned on its fold's training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from citypulse.model import models
from citypulse.model.config import BASELINE_KINDS, RetrainConfig
from citypulse.model.features import Split, Windows
from citypulse.model.metrics import evaluate, summarise


@dataclass
class FoldResult:
    """One fold: its windows and split, each model's test metrics, flag threshold and (for
    learned models) fitted estimator."""

    windows: Windows
    split: Split
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    estimators: dict[str, Any] = field(default_factory=dict)


@dataclass
class Backtest:
    """Every fold's results, oldest first; the newest fold's models are the ones published."""

    folds: list[FoldResult]

    @property
    def last(self) -> FoldResult:
        return self.folds[-1]

    def kinds(self) -> list[str]:
        return list(self.last.metrics)

    def summary(self, kind: str) -> dict[str, Any]:
        """The kind's metrics: means across folds, `sd`, `folds` (see metrics.summarise)."""
        return summarise([fold.metrics[kind] for fold in self.folds])

    def per_fold(self, kind: str, metric: str) -> list[float | None]:
        return [fold.metrics[kind].get(metric) for fold in self.folds]


def scores_of(kind: str, data: Split) -> tuple[np.ndarray, np.ndarray, Any]:
    """(training scores, test scores, fitted estimator or None) of one model on a split."""
    if kind in BASELINE_KINDS:
        return models.baseline_score(kind, data.train), models.baseline_score(kind, data.test), None
    estimator = models.fit(kind, data.train)
    train = models.probabilities(estimator, data.train)
    return train, models.probabilities(estimator, data.test), estimator


def evaluate_fold(data: Split, windows: Windows, config: RetrainConfig) -> FoldResult:
    """Baselines scored, learned models fitted on training rows, all judged on the test rows."""
    result = FoldResult(windows, data)
    truth = data.train["hotspot"].to_numpy(dtype=int)
    for kind in config.model_kinds():
        train_score, test_score, estimator = scores_of(kind, data)
        threshold = models.flag_threshold(truth, train_score)
        result.thresholds[kind] = threshold
        result.metrics[kind] = evaluate(data.test, models.flagged(test_score, threshold))
        if estimator is not None:
            result.estimators[kind] = estimator
    return result


def run_backtest(splits: list[Split], folds: list[Windows], config: RetrainConfig) -> Backtest:
    """Every fold evaluated, oldest first."""
    return Backtest(
        [evaluate_fold(data, windows, config) for data, windows in zip(splits, folds, strict=True)]
    )
