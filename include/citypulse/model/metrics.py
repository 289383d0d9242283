"""Metrics of one model on the test rows: ranking, incidents captured per area, calibration.

`pr_auc` (average precision) is the headline: hotspots are rare, and a model that ranks
hexagons well but rarely is worth little. Area scores (`area_score`) follow the NIJ Real-Time
Crime Forecasting Challenge: each day the model flags the `share` of the fold's hexagons it
ranks highest (k = ceil(share x cells)); `capture` is the share of all test incidents inside
them, `pai` (predictive accuracy index) divides it by the share of the area actually flagged
(k / cells, e.g. 13 / 123, not the nominal 10 %), so 1.0 means no better than chance; `pei`
(predictive efficiency index) divides it by the capture of the best k hexagons any forecast
could have picked (the ones with the most incidents that day), so 1.0 is perfect. Hexagons
tied at the cut share the remaining places: each gets that fraction of a flag (fractional
tie-breaking: no ordering by cell id flatters or hurts a model). The area is the fold's
hexagons (features.universe), all the same size. Shares: AREA_SHARES (1, 5, 10 %); the
unsuffixed `top10_capture`, `pai` and `pei` are the 10 % ones.
Precision, recall and F1 are of the flags (score at or above the threshold tuned on
training rows); `prevalence` (the positive share) is what PR AUC scores by chance. `brier` is
the mean squared error of the calibrated probability, `brier_base` that of the training
rows' positive share said for every row, `brier_skill` = 1 - brier / brier_base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import AREA_SHARES, RELIABILITY_EDGES, TOP_SHARE
from citypulse.model.models import Scores

METRIC_NAMES = (
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "top10_capture",
    "pai",
    "pei",
    "flagged_share",
    "capture_1",
    "pai_1",
    "pei_1",
    "capture_5",
    "pai_5",
    "pei_5",
    "brier",
    "brier_base",
    "brier_skill",
    "prevalence",
    "cells",
    "rows",
    "positives",
)
TOTALS = ("rows", "positives")  # summed across folds; every other metric is a mean


@dataclass(frozen=True)
class AreaScore:
    """Incidents inside the top `share` of hexagons per day: what the flags held, what the
    best possible flags would have held, how many hexagon-days were flagged of how many."""

    captured: float
    best: float
    total: float
    flagged_cells: int
    cells: int

    @property
    def capture(self) -> float:
        return self.captured / self.total if self.total else 0.0

    @property
    def flagged_share(self) -> float:
        return self.flagged_cells / self.cells if self.cells else 0.0

    @property
    def pai(self) -> float | None:
        return self.capture / self.flagged_share if self.flagged_cells else None

    @property
    def pei(self) -> float | None:
        return self.captured / self.best if self.best else None


def area_score(test: pd.DataFrame, score: np.ndarray, share: float = TOP_SHARE) -> AreaScore:
    """Each day, the top ceil(`share` x hexagons) by score, ties sharing the last places."""
    ranked = pd.DataFrame(
        {
            "local_day": test["local_day"].to_numpy(),
            "score": np.asarray(score, dtype=float),
            "incidents": test["incidents"].to_numpy(dtype=float),
        }
    ).sort_values(["local_day", "score"], ascending=[True, False], kind="stable")
    days = ranked.groupby("local_day", sort=False)
    per_day = days["score"].transform("size").to_numpy()
    quota = np.minimum(np.ceil(share * per_day - 1e-9), per_day)
    position = days.cumcount().to_numpy()
    ties = ranked.assign(position=position).groupby(["local_day", "score"], sort=False)
    start = ties["position"].transform("min").to_numpy()
    size = ties["position"].transform("size").to_numpy()
    credit = np.clip(quota - start, 0, size) / size
    incidents = ranked["incidents"].to_numpy()
    # The best k: each day's largest counts (ties among them change no sum).
    best_rank = ranked.groupby("local_day")["incidents"].rank(method="first", ascending=False)
    best = float(incidents[best_rank.to_numpy() <= quota].sum())
    day_quota = days["score"].size().to_numpy()
    flagged = int(np.minimum(np.ceil(share * day_quota - 1e-9), day_quota).sum())
    return AreaScore(
        captured=float((credit * incidents).sum()),
        best=best,
        total=float(incidents.sum()),
        flagged_cells=flagged,
        cells=len(ranked),
    )


def top_share_capture(test: pd.DataFrame, score: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of the test incidents inside each day's top `share` of hexagons by score."""
    return area_score(test, score, share).capture


def brier(truth: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean((np.asarray(probability, dtype=float) - truth) ** 2))


def evaluate(
    test: pd.DataFrame,
    scores: Scores,
    probability: np.ndarray | None = None,
    base_rate: float | None = None,
) -> dict[str, Any]:
    """Classification, area and calibration metrics on labelled rows (`probability`: the
    calibrated one; `base_rate`: the training rows' positive share)."""
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    truth = test["hotspot"].to_numpy(dtype=int)
    called = scores.predicted.astype(int)
    both_classes = np.unique(truth).size == 2
    metrics: dict[str, Any] = {
        "precision": float(precision_score(truth, called, zero_division=0)),
        "recall": float(recall_score(truth, called, zero_division=0)),
        "f1": float(f1_score(truth, called, zero_division=0)),
        "roc_auc": float(roc_auc_score(truth, scores.score)) if both_classes else None,
        "pr_auc": float(average_precision_score(truth, scores.score)) if truth.any() else None,
    }
    for share in AREA_SHARES:
        area = area_score(test, scores.score, share)
        suffix = "" if share == TOP_SHARE else f"_{round(share * 100)}"
        metrics["top10_capture" if not suffix else f"capture{suffix}"] = area.capture
        metrics[f"pai{suffix}"] = area.pai
        metrics[f"pei{suffix}"] = area.pei
        if not suffix:
            metrics["flagged_share"] = area.flagged_share
    if probability is not None and truth.size:
        metrics["brier"] = brier(truth, probability)
        if base_rate is not None:
            metrics["brier_base"] = brier(truth, np.full(truth.size, base_rate))
            metrics["brier_skill"] = (
                1 - metrics["brier"] / metrics["brier_base"] if metrics["brier_base"] else None
            )
    metrics.update(
        prevalence=float(truth.mean()) if truth.size else None,
        cells=int(test["h3_cell"].nunique()),
        rows=int(truth.size),
        positives=int(truth.sum()),
    )
    return {k: _rounded(v) for k, v in metrics.items()}


def reliability(truth: np.ndarray, probability: np.ndarray) -> list[dict[str, Any]]:
    """Per RELIABILITY_EDGES bin of the calibrated probability (with rows): its rows, the mean
    probability said and the share that were hotspots; calibrated means the two agree."""
    probability = np.asarray(probability, dtype=float)
    edges = np.asarray(RELIABILITY_EDGES)
    bins = np.clip(np.digitize(probability, edges[1:-1], right=False), 0, len(edges) - 2)
    table = []
    for number in range(len(edges) - 1):
        inside = bins == number
        if not inside.any():
            continue
        table.append(
            {
                "low": float(edges[number]),
                "high": float(edges[number + 1]),
                "rows": int(inside.sum()),
                "predicted": _rounded(float(probability[inside].mean())),
                "observed": _rounded(float(truth[inside].mean())),
            }
        )
    return table


def summarise(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Across folds: each metric's mean (top level), its sample standard deviation (`sd`),
    the per-fold values (`folds`); `rows` and `positives` are totals."""
    summary: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for name in METRIC_NAMES:
        values = [f[name] for f in folds if f.get(name) is not None]
        if name in TOTALS:
            summary[name] = int(sum(values))
            continue
        summary[name] = _rounded(float(np.mean(values))) if values else None
        spread[name] = _rounded(float(np.std(values, ddof=1))) if len(values) > 1 else None
    return {**summary, "sd": spread, "folds": folds}


def _rounded(value: Any) -> Any:
    """Six decimals: stable across platforms' last-bit float noise, plenty for comparing."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value
