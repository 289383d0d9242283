"""The models: two rule baselines and the learned ones, each scoring hex-days.

Baselines need no fitting: `persistence` says a hexagon is a hotspot today if it was one
yesterday; `trailing_mean` scores by the last 28 days' mean count. Learned models are
scikit-learn pipelines with a fixed `random_state`, so the same rows give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citypulse.model.config import (
    BASELINE_KINDS,
    COUNT_FEATURES,
    DECISION_THRESHOLD,
    FEATURES,
    SEED,
)

TRAILING_MEAN_FEATURE = "mean_28"
BASELINE_RULES = {
    "persistence": "score = 1 if lag_1 >= threshold else 0 (yesterday's label)",
    "trailing_mean": f"score = {TRAILING_MEAN_FEATURE}; hotspot if it is >= threshold",
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


def baseline_scores(kind: str, frame: pd.DataFrame, threshold: float) -> Scores:
    """Scores of a rule baseline, from the same lagged features the models see."""
    if kind == "persistence":
        yesterday = (frame["lag_1"].to_numpy(dtype=float) >= threshold).astype(float)
        return Scores(yesterday, yesterday.astype(bool))
    if kind == "trailing_mean":
        mean = frame[TRAILING_MEAN_FEATURE].to_numpy(dtype=float)
        return Scores(mean, mean >= threshold)
    raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINE_KINDS}")


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


def model_scores(estimator: Any, frame: pd.DataFrame) -> Scores:
    """Hotspot probabilities of a fitted estimator and its calls at DECISION_THRESHOLD."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        probability = estimator.predict_proba(feature_matrix(frame))[:, 1]
    return Scores(probability, probability >= DECISION_THRESHOLD)
