"""Rolling-origin evaluation: every model trained and tested on each fold, then summarised.

Fold k trains on the days before its test window (ending the publication lag before it) and
is tested on `test_days` days, forecast as published: from weekly origins, horizons 1..7,
with the data as it stood at each origin (features.as_published). The folds' test windows
follow each other up to the last known day, so each metric gets a mean and a spread across
folds instead of one number from one window; per-horizon figures and the reliability table
pool the folds' test rows. Baselines are scored by their rule (near_repeat's two parameters
fitted on training rows); every model's flag threshold is tuned on its fold's training rows,
and its calibration fitted there too (a learned model's on the newest CALIBRATION_SHARE of
training days, scored by a model fitted on the days before them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model import models
from citypulse.model.config import BASELINE_KINDS, CALIBRATION_SHARE, HORIZON_DAYS, RetrainConfig
from citypulse.model.features import Split, Windows
from citypulse.model.metrics import area_score, brier, evaluate, reliability, summarise


@dataclass
class Fitted:
    """One model on one fold: training and test scores, calibration, and what was fitted
    (an estimator for a learned model, parameters for a fitted rule)."""

    train_score: np.ndarray
    test_score: np.ndarray
    calibration: models.Calibration
    estimator: Any = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FoldResult:
    """One fold: its windows and split, each model's test metrics, flag threshold, fit."""

    windows: Windows
    split: Split
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    fits: dict[str, Fitted] = field(default_factory=dict)

    @property
    def estimators(self) -> dict[str, Any]:
        return {k: f.estimator for k, f in self.fits.items() if f.estimator is not None}


@dataclass
class Backtest:
    """Every fold's results, oldest first; the newest fold's models are the ones published."""

    folds: list[FoldResult]
    _summaries: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def last(self) -> FoldResult:
        return self.folds[-1]

    def kinds(self) -> list[str]:
        return list(self.last.metrics)

    def summary(self, kind: str) -> dict[str, Any]:
        """The kind's metrics: means across folds, `sd`, `folds` (see metrics.summarise),
        plus `by_horizon` and `reliability` on the folds' pooled test rows (when scored)."""
        if kind not in self._summaries:
            self._summaries[kind] = self._summary(kind)
        return self._summaries[kind]

    def _summary(self, kind: str) -> dict[str, Any]:
        summary = summarise([fold.metrics[kind] for fold in self.folds])
        if all(kind in fold.fits for fold in self.folds):
            pooled = self.pooled(kind)
            summary["by_horizon"] = by_horizon(pooled)
            summary["reliability"] = reliability(
                pooled["hotspot"].to_numpy(dtype=int), pooled["probability"].to_numpy()
            )
        return summary

    def per_fold(self, kind: str, metric: str) -> list[float | None]:
        return [fold.metrics[kind].get(metric) for fold in self.folds]

    def pooled(self, kind: str) -> pd.DataFrame:
        """Every fold's test rows with the kind's score and calibrated probability."""
        parts: list[pd.DataFrame] = []
        for fold in self.folds:
            fit = fold.fits[kind]
            test = fold.split.test
            parts.append(
                pd.DataFrame(
                    {
                        "fold": len(parts),
                        "local_day": test["local_day"],
                        "horizon": test["horizon"],
                        "incidents": test["incidents"],
                        "hotspot": test["hotspot"],
                        "score": fit.test_score,
                        "probability": fit.calibration.apply(fit.test_score),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)


def by_horizon(pooled: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """PR AUC, PAI at 10 % and Brier score per horizon (days ahead of the forecast's origin)."""
    from sklearn.metrics import average_precision_score

    table: dict[str, dict[str, Any]] = {}
    for horizon in range(1, HORIZON_DAYS + 1):
        rows = pooled[pooled["horizon"] == horizon]
        if rows.empty:
            continue
        truth = rows["hotspot"].to_numpy(dtype=int)
        score = rows["score"].to_numpy()
        table[str(horizon)] = {
            "pr_auc": round(float(average_precision_score(truth, score)), 6)
            if truth.any()
            else None,
            "pai": _round(area_score(rows, score).pai),
            "brier": round(brier(truth, rows["probability"].to_numpy()), 6),
            "rows": int(truth.size),
            "positives": int(truth.sum()),
        }
    return table


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def calibration_cut(train: pd.DataFrame) -> pd.Timestamp:
    """The first of the newest CALIBRATION_SHARE of the training days."""
    days = np.sort(train["local_day"].unique())
    return pd.Timestamp(days[int(len(days) * (1 - CALIBRATION_SHARE))])


def fit_model(kind: str, data: Split) -> Fitted:
    """Score the training and test rows with one model, and calibrate it on training rows."""
    truth = data.train["hotspot"].to_numpy(dtype=int)
    if kind in BASELINE_KINDS:
        params = models.fit_near_repeat(data.train) if kind == "near_repeat" else {}
        train = models.baseline_score(kind, data.train, params or None)
        test = models.baseline_score(kind, data.test, params or None)
        return Fitted(train, test, models.fit_calibration(train, truth), params=params)
    estimator = models.fit(kind, data.train)
    train = models.probabilities(estimator, data.train)
    test = models.probabilities(estimator, data.test)
    cut = calibration_cut(data.train)
    early = data.train[data.train["local_day"] < cut]
    late = data.train[data.train["local_day"] >= cut]
    if early["hotspot"].nunique() == 2 and late["hotspot"].any():
        held_out = models.probabilities(models.fit(kind, early), late)
        calibration = models.fit_calibration(held_out, late["hotspot"].to_numpy(dtype=int))
    else:  # too few hotspots to hold days out: calibrate on the rows it learned from
        calibration = models.fit_calibration(train, truth)
    return Fitted(train, test, calibration, estimator=estimator)


def evaluate_fold(data: Split, windows: Windows, config: RetrainConfig) -> FoldResult:
    """Baselines scored, learned models fitted on training rows, all judged on the test rows."""
    result = FoldResult(windows, data)
    truth = data.train["hotspot"].to_numpy(dtype=int)
    base_rate = float(truth.mean())
    for kind in config.model_kinds():
        fit = fit_model(kind, data)
        threshold = models.flag_threshold(truth, fit.train_score)
        result.thresholds[kind] = threshold
        result.fits[kind] = fit
        result.metrics[kind] = evaluate(
            data.test,
            models.flagged(fit.test_score, threshold),
            fit.calibration.apply(fit.test_score),
            base_rate,
        )
    return result


def run_backtest(splits: list[Split], folds: list[Windows], config: RetrainConfig) -> Backtest:
    """Every fold evaluated, oldest first."""
    return Backtest(
        [evaluate_fold(data, windows, config) for data, windows in zip(splits, folds, strict=True)]
    )
