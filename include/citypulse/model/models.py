"""The models: two rule baselines and the learned ones, each scoring hex-days.

Baselines need no fitting; each scores a hex-day by an expected count: `persistence` by
yesterday's count, `trailing_mean` by the last 28 days' mean, `kernel_density` by that mean
smoothed over the hexagons around (features.add_kernel_density). Learned models are
scikit-learn pipelines with a fixed `random_state`, so the same rows give the same model.
Every model flags a hex-day when its score reaches a threshold tuned on the training rows
(best F1 there), never a fixed cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import (
    BASELINE_KINDS,
    COUNT_FEATURES,
    FEATURES,
    SEED,
)

# The expected count (per day) each baseline scores by.
BASELINE_COLUMNS = {
    "persistence": "lag_1",
    "trailing_mean": "mean_28",
    "kernel_density": "kernel_density",
}
BASELINE_RULES = {
    "persistence": "score = yesterday's count (lag_1)",
    "trailing_mean": "score = the 28-day mean count (mean_28)",
    "kernel_density": "score = 28-day mean counts within 2 rings, Gaussian kernel (1 ring)",
}

# Hyperparameters per learned kind, recorded in the registry with each run.
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "max_iter": 2000},
    "random_forest": {
        "n_estimators": 100,
        "max_depth": 10,
        "min_samples_leaf": 50,
        "max_features": 0.5,
    },
    "hist_gradient_boosting": {
        "max_iter": 100,
        "learning_rate": 0.05,
        "max_leaf_nodes": 7,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "early_stopping": False,
    },
}


@dataclass
class Scores:
    """A model's hotspot scores for rows (higher = more likely) and its yes/no calls."""

    score: np.ndarray
    predicted: np.ndarray


def baseline_score(kind: str, frame: pd.DataFrame) -> np.ndarray:
    """A rule baseline's expected count per row, from the same lagged features models see."""
    column = BASELINE_COLUMNS.get(kind)
    if column is None:
        raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINE_KINDS}")
    return np.nan_to_num(frame[column].to_numpy(dtype=float), nan=0.0)


def flag_threshold(truth: np.ndarray, score: np.ndarray) -> float:
    """The score at or above which a row is flagged: the best F1 on (training) rows; +inf
    (flag nothing) when they hold no hotspot."""
    from sklearn.metrics import precision_recall_curve

    if not truth.any():
        return float("inf")
    precision, recall, thresholds = precision_recall_curve(truth, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def flagged(score: np.ndarray, threshold: float) -> Scores:
    return Scores(score, score >= threshold)


def make_estimator(kind: str) -> Any:
    """An unfitted scikit-learn estimator of `kind` that takes the FEATURES columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    params = HYPERPARAMETERS.get(kind)
    if params is None:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(HYPERPARAMETERS)}")
    if kind == "logistic_regression":
        counts = Pipeline([("log1p", FunctionTransformer(np.log1p)), ("scale", StandardScaler())])
        prepare = ColumnTransformer(
            [
                ("counts", counts, list(COUNT_FEATURES)),
                ("weekday", OneHotEncoder(handle_unknown="ignore"), ["day_of_week"]),
                ("holiday", "passthrough", ["is_holiday"]),
            ]
        )
        model = LogisticRegression(random_state=SEED, **params)
        return Pipeline([("prepare", prepare), ("model", model)])
    if kind == "random_forest":
        return RandomForestClassifier(random_state=SEED, n_jobs=1, **params)
    return HistGradientBoostingClassifier(
        random_state=SEED, categorical_features=[FEATURES.index("day_of_week")], **params
    )


def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model inputs, in FEATURES order."""
    return frame.loc[:, list(FEATURES)]


def fit(kind: str, train: pd.DataFrame) -> Any:
    """A fitted estimator of `kind` on the training rows' features and `hotspot` labels."""
    labels = train["hotspot"].to_numpy()
    if np.unique(labels).size < 2:
        raise ValueError("the training window has a single class: cannot fit a classifier")
    from threadpoolctl import threadpool_limits

    estimator = make_estimator(kind)
    # One thread: cities train side by side in mapped tasks, and OpenMP pools per task
    # would oversubscribe the worker's cores.
    with threadpool_limits(limits=1):
        estimator.fit(feature_matrix(train), labels)
    return estimator


def probabilities(estimator: Any, frame: pd.DataFrame) -> np.ndarray:
    """Hotspot probabilities of a fitted estimator."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return np.asarray(estimator.predict_proba(feature_matrix(frame))[:, 1], dtype=float)
