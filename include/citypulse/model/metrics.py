"""Metrics of one model on the test window: classification quality and incidents captured.

`pr_auc` (average precision) is the headline: hotspots are rare, and a model that ranks
hexagons well but rarely is worth little. `top10_capture` is the share of all test incidents
that fell in the 10 % of hexagons the model ranked highest each day; `pai` (predictive
accuracy index) divides it by that 10 % area share, so 1.0 means no better than chance.
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
    "rows",
    "positives",
)


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
    """Precision, recall, F1, ROC AUC, PR AUC, top-10 % capture and PAI on labelled rows."""
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
    metrics: dict[str, Any] = {
        "precision": float(precision_score(truth, called, zero_division=0)),
        "recall": float(recall_score(truth, called, zero_division=0)),
        "f1": float(f1_score(truth, called, zero_division=0)),
        "roc_auc": float(roc_auc_score(truth, scores.score)) if both_classes else None,
        "pr_auc": float(average_precision_score(truth, scores.score)) if truth.any() else None,
        "top10_capture": capture,
        "pai": capture / TOP_SHARE,
        "rows": int(truth.size),
        "positives": int(truth.sum()),
    }
    return {k: _rounded(v) for k, v in metrics.items()}


def _rounded(value: Any) -> Any:
    """Six decimals: stable across platforms' last-bit float noise, plenty for comparing."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value
