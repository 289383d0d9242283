"""What one retrain run does, validated from the DAG's Params; the model's fixed constants.

Light on purpose (pydantic only): the DAG file imports it at parse time for Param defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Models every run evaluates. Baselines are rules, the reference is always trained so the
# logistic regression of the source project stays comparable; the candidate is `model_kind`.
# `kernel_density` is the police analysts' off-the-shelf method (recent incidents smoothed
# over neighbouring hexagons).
BASELINE_KINDS = ("persistence", "trailing_mean", "kernel_density")
REFERENCE_KIND = "logistic_regression"
CANDIDATE_KINDS = ("random_forest", "hist_gradient_boosting", "logistic_regression")
ModelKind = Literal["random_forest", "hist_gradient_boosting", "logistic_regression"]

# Feature columns, in the order models see them. Every one uses counts strictly before the day.
COUNT_FEATURES = ("lag_1", "lag_7", "mean_7", "mean_28", "hex_mean", "ring_lag_1", "ring_mean_7")
CALENDAR_FEATURES = ("day_of_week", "is_holiday")
FEATURES = COUNT_FEATURES + CALENDAR_FEATURES

# The longest look-back of a feature: training starts this many days after the first loaded
# day, so no training row has a truncated rolling window.
WARMUP_DAYS = 28
MIN_TRAIN_DAYS = 14
HORIZON_DAYS = 7  # predictions cover the next week
TOP_SHARE = 0.10  # PAI and PEI flag this share of the hexagons each day
DECISION_THRESHOLD = 0.5  # only for artifacts saved before flag thresholds were tuned
SEED = 20_251_013  # every estimator's random_state
KDE_RINGS = 2  # kernel density: incidents of hexagons up to this many rings away count...
KDE_BANDWIDTH = 1.0  # ...with weight exp(-d^2 / (2 * bandwidth^2)), d in rings
LIFT_CONFIDENCE = 0.90  # two-sided across-fold t interval of the lift over the best baseline

H3_COLUMNS = {7: "h3_r7", 8: "h3_r8"}  # hex_daily_counts column per resolution


class CitySkipped(Exception):
    """A city cannot be trained this run (stale data, too little history); the others can."""


class RetrainConfig(BaseModel):
    """One run's settings; every field is a DAG Param of the same name."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cities: list[str] = Field(default_factory=list)
    as_of: date | None = None  # evaluate as on this local day; None: the run's date
    training_days: int = Field(42, ge=MIN_TRAIN_DAYS, le=730)
    test_days: int = Field(14, ge=7, le=90)  # each fold's test window
    folds: int = Field(4, ge=1, le=12)
    h3_resolution: Literal[7, 8] = 7
    model_kind: ModelKind = "hist_gradient_boosting"
    max_staleness_days: int = Field(3, ge=0, le=60)
    champion_tolerance: float = Field(0.02, ge=0, le=1)
    hotspot_quantile: float = Field(0.9, gt=0.5, lt=1)
    min_coverage: float = Field(0.8, ge=0, le=1)
    min_test_positives: int = Field(10, ge=0)
    chance_factor: float = Field(2.0, ge=1)
    publish: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> RetrainConfig:
        """The config of a run from its (already JSON-schema validated) Params."""
        return cls.model_validate(dict(params or {}))

    @property
    def h3_column(self) -> str:
        return H3_COLUMNS[self.h3_resolution]

    def model_kinds(self) -> list[str]:
        """Every model the run evaluates, baselines first, the candidate last."""
        learned = [REFERENCE_KIND] if self.model_kind != REFERENCE_KIND else []
        return [*BASELINE_KINDS, *learned, self.model_kind]


DEFAULTS = RetrainConfig()
