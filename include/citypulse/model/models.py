"""The models: rule baselines and the learned ones, each scoring hex-days, and calibration.

Baselines need no fitting; each scores a hex-day by an expected count: `persistence` by
yesterday's count, `trailing_mean` by the last 28 days' mean, `kernel_density` by that mean
smoothed over the hexagons around (features.add_kernel_density), `mean_365`/`mean_730` by the
hexagon's long-run mean, `kde_365` by the smoothed 365-day mean, and `near_repeat` by the
365-day mean plus theta x the recent incidents around it decaying with tau days
(features.add_near_repeat), theta and tau chosen on the training rows' Poisson likelihood
(theta 0 is the 365-day mean itself). Learned models are scikit-learn pipelines with a fixed
`random_state`, so the same rows give the same model. Every model flags a hex-day when its
score reaches a threshold tuned on the training rows (best F1 there), never a fixed cut-off.
Every model's score becomes a probability through an isotonic calibration fitted on training
rows (`Calibration`), so a published 0.2 means about one hex-day in five is a hotspot.
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
    NEAR_REPEAT_TAUS,
    NEAR_REPEAT_THETAS,
    SEED,
)

# The expected count (per day) each rule baseline scores by; near_repeat is computed.
BASELINE_COLUMNS = {
    "persistence": "lag_1",
    "trailing_mean": "mean_28",
    "kernel_density": "kernel_density",
    "mean_365": "mean_365",
    "mean_730": "mean_730",
    "kde_365": "kde_365",
}
BASELINE_RULES = {
    "persistence": "score = yesterday's count (lag_1)",
    "trailing_mean": "score = the 28-day mean count (mean_28)",
    "kernel_density": "score = 28-day mean counts within 2 rings, Gaussian kernel (1 ring)",
    "mean_365": "score = the hexagon's 365-day mean count",
    "mean_730": "score = the hexagon's 730-day mean count",
    "kde_365": "score = 365-day mean counts within 2 rings, Gaussian kernel (1 ring)",
    "near_repeat": "score = 365-day mean + theta x kernel-smoothed recent counts decaying "
    "exp(-days/tau); theta, tau by training Poisson likelihood",
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


def baseline_score(
    kind: str, frame: pd.DataFrame, params: dict[str, Any] | None = None
) -> np.ndarray:
    """A rule baseline's expected count per row, from the same lagged features models see
    (`params`: near_repeat's fitted theta and tau)."""
    if kind == "near_repeat":
        if params is None:
            raise ValueError("near_repeat needs its fitted theta and tau")
        background = frame["mean_365"].to_numpy(dtype=float)
        recent = frame[f"nr_{int(params['tau'])}"].to_numpy(dtype=float)
        return np.nan_to_num(background + float(params["theta"]) * recent, nan=0.0)
    column = BASELINE_COLUMNS.get(kind)
    if column is None:
        raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINE_KINDS}")
    return np.nan_to_num(frame[column].to_numpy(dtype=float), nan=0.0)


def fit_near_repeat(train: pd.DataFrame) -> dict[str, Any]:
    """theta and tau (NEAR_REPEAT_THETAS x NEAR_REPEAT_TAUS) of the highest Poisson
    log-likelihood of the training rows' counts; the first on a tie (theta 0 first)."""
    counts = train["incidents"].to_numpy(dtype=float)
    best: tuple[float, dict[str, Any]] | None = None
    for tau in NEAR_REPEAT_TAUS:
        for theta in NEAR_REPEAT_THETAS:
            params = {"tau": tau, "theta": theta}
            rate = np.maximum(baseline_score("near_repeat", train, params), 1e-6)
            loglik = float(np.sum(counts * np.log(rate) - rate))
            if best is None or loglik > best[0] + 1e-9:
                best = (loglik, params)
    assert best is not None
    return best[1]


@dataclass(frozen=True)
class Calibration:
    """A monotone map from a model's score to a probability: piecewise linear through the
    isotonic fit's points (`x` scores, `y` probabilities), flat beyond them."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, score: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(np.asarray(score, dtype=float), self.x, self.y), 0.0, 1.0)

    def as_dict(self) -> dict[str, list[float]]:
        return {"x": [round(v, 8) for v in self.x], "y": [round(v, 8) for v in self.y]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibration | None:
        if not data:
            return None
        return cls(tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"]))


def fit_calibration(score: np.ndarray, truth: np.ndarray) -> Calibration:
    """Isotonic regression of the labels on the scores (increasing, 0..1)."""
    from sklearn.isotonic import IsotonicRegression

    if np.unique(truth).size < 2:
        share = float(np.mean(truth)) if truth.size else 0.0
        return Calibration((0.0,), (share,))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(score, dtype=float), np.asarray(truth, dtype=float))
    return Calibration(
        tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_)
    )


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
