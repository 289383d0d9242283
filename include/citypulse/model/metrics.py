"""Metrics of one model on the test window: classification quality and incidents captured.

`pr_auc` (average precision) is the headline: hotspots are rare, and a model that ranks
hexagons well but rarely is worth little. `top10_capture` is the share of all test incidents
that fell in the 10 % of hexagons the model ranked highest each day; `pai` (predictive
accuracy index, NIJ Real-Time Crime Forecasting Challenge) divides it by that 10 % area
share, so 1.0 means no better than chance; `pei` (predictive efficiency index) divides it by
the capture of the best 10 % any forecast could have picked (the hexagons with the most
incidents each day), so 1.0 is perfect. The area is the hexagons of the window's grid (every
hexagon with an incident in the loaded window), each the same size.
Precision, recall and F1 are of the flags (score at or above the threshold tuned on
training rows); `prevalence` (the positive share) is what PR AUC scores by chance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import TOP_SHARE
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
    "prevalence",
    "rows",
    "positives",
)


def best_share_capture(test: pd.DataFrame, share: float = TOP_SHARE) -> float:
    """The highest `top_share_capture` any scores could reach: ranked by the incidents."""
    return top_share_capture(test, test["incidents"].to_numpy(dtype=float), share)


def top_share_capture(test: pd.DataFrame, score: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of the test incidents inside each day's top `share` of hexagons by score.

    Ties are broken by cell id (rows arrive sorted), so the result is deterministic.
    """
    ranked = pd.DataFrame(
        {
            "local_day": test["local_day"].to_numpy(),
            "h3_cell": test["h3_cell"].to_numpy(),
            "score": score,
            "incidents": test["incidents"].to_numpy(dtype=float),
        }
    ).sort_values(["local_day", "score", "h3_cell"], ascending=[True, False, True], kind="stable")
    rank = ranked.groupby("local_day").cumcount()
    per_day = ranked.groupby("local_day")["h3_cell"].transform("size")
    flagged = rank < np.ceil(share * per_day)
    total = ranked["incidents"].sum()
    return float(ranked.loc[flagged, "incidents"].sum() / total) if total else 0.0


def evaluate(test: pd.DataFrame, scores: Scores) -> dict[str, Any]:
    """Precision, recall, F1, ROC AUC, PR AUC, top-10 % capture, PAI and PEI on labelled rows."""
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
    capture = top_share_capture(test, scores.score)
    best = best_share_capture(test)
    metrics: dict[str, Any] = {
        "precision": float(precision_score(truth, called, zero_division=0)),
        "recall": float(recall_score(truth, called, zero_division=0)),
        "f1": float(f1_score(truth, called, zero_division=0)),
        "roc_auc": float(roc_auc_score(truth, scores.score)) if both_classes else None,
        "pr_auc": float(average_precision_score(truth, scores.score)) if truth.any() else None,
        "top10_capture": capture,
        "pai": capture / TOP_SHARE,
        "pei": capture / best if best else None,
        "prevalence": float(truth.mean()) if truth.size else None,
        "rows": int(truth.size),
        "positives": int(truth.sum()),
    }
    return {k: _rounded(v) for k, v in metrics.items()}


def summarise(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Across folds: each metric's mean (top level), its sample standard deviation (`sd`),
    the per-fold values (`folds`); `rows` and `positives` are totals."""
    summary: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for name in METRIC_NAMES:
        values = [f[name] for f in folds if f.get(name) is not None]
        if name in ("rows", "positives"):
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
