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
# over neighbouring hexagons), `kde_365` the same over a year; `mean_365`/`mean_730` are each
# hexagon's long-run daily mean; `near_repeat` is self-exciting (Mohler's ETAS idea): the
# hexagon's 365-day mean plus recent incidents around it, decaying exponentially in time.
BASELINE_KINDS = (
    "persistence",
    "trailing_mean",
    "kernel_density",
    "mean_365",
    "mean_730",
    "kde_365",
    "near_repeat",
)
REFERENCE_KIND = "logistic_regression"
CANDIDATE_KINDS = ("random_forest", "hist_gradient_boosting", "logistic_regression")
ModelKind = Literal["random_forest", "hist_gradient_boosting", "logistic_regression"]

# Feature columns, in the order models see them. Every one uses counts strictly before the day.
COUNT_FEATURES = ("lag_1", "lag_7", "mean_7", "mean_28", "hex_mean", "ring_lag_1", "ring_mean_7")
CALENDAR_FEATURES = ("day_of_week", "is_holiday")
FEATURES = COUNT_FEATURES + CALENDAR_FEATURES

# The longest look-back of a learned model's rolling features: training starts this many days
# (plus the publication lag and the horizon) after the first loaded day, so no training row
# has a truncated 28-day window. The long-run baselines read up to HISTORY_DAYS before
# training where the data has them.
WARMUP_DAYS = 28
HISTORY_DAYS = 730
MIN_TRAIN_DAYS = 14
HORIZON_DAYS = 7  # predictions cover the next week: horizons 1..7 from each weekly origin
TOP_SHARE = 0.10  # the headline PAI and PEI flag this share of the hexagons each day
AREA_SHARES = (0.01, 0.05, 0.10)  # PAI and PEI at each of these shares of the area
# Near-repeat: the grid its decay (days) and excitation weight are chosen from, on the
# training rows' Poisson likelihood; theta 0 is the plain 365-day mean.
NEAR_REPEAT_TAUS = (1, 3, 7, 14, 28)
NEAR_REPEAT_THETAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
# Calibration: a learned model's probabilities are mapped by an isotonic fit on the newest
# CALIBRATION_SHARE of its training days, scored by a model fitted on the days before them.
CALIBRATION_SHARE = 0.25
RELIABILITY_EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0)
DECISION_THRESHOLD = 0.5  # only for artifacts saved before flag thresholds were tuned
SEED = 20_251_013  # every estimator's random_state
KDE_RINGS = 2  # kernel density: incidents of hexagons up to this many rings away count...
KDE_BANDWIDTH = 1.0  # ...with weight exp(-d^2 / (2 * bandwidth^2)), d in rings
LIFT_CONFIDENCE = 0.90  # two-sided across-fold t interval of the lift over the best baseline

H3_COLUMNS = {7: "h3_r7", 8: "h3_r8"}  # hex_daily_counts column per resolution


class CitySkipped(Exception):
    """A city cannot be trained this run (stale data, too little history); the others can."""


class RetrainConfig(BaseModel):
    """One run's settings; every field is a DAG Param of the same name, with the same bounds
    and description (`param_schemas`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cities: list[str] = Field(default_factory=list, description="Cities (city DAG ids) to retrain.")
    as_of: date | None = Field(
        None,
        description="Evaluate as on this local day (YYYY-MM-DD): only data known before it "
        "counts. Empty: the run's date.",
    )
    training_days: int = Field(
        42,
        ge=MIN_TRAIN_DAYS,
        le=730,
        description="Days in each fold's training window, before its test window.",
    )
    test_days: int = Field(14, ge=7, le=90, description="Days in each fold's test window.")
    folds: int = Field(
        4,
        ge=1,
        le=12,
        description="Consecutive test windows (rolling origin) ending on the last known day.",
    )
    h3_resolution: Literal[7, 8] = Field(
        7, description="H3 resolution of the hexagons (7: ~5 km², 8: ~0.7 km²)."
    )
    model_kind: ModelKind = Field(
        "hist_gradient_boosting", description="The candidate model that may be published."
    )
    max_staleness_days: int = Field(
        3,
        ge=0,
        le=60,
        description="Skip a city whose data ends more than this many days before the day "
        "before as_of.",
    )
    champion_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="How much lower than the champion's PR AUC a candidate may score.",
    )
    hotspot_quantile: float = Field(
        0.9,
        gt=0.5,
        lt=1,
        description="Quantile of training hex-day counts that makes the hotspot threshold.",
    )
    min_coverage: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Skip a city unless this share of records has a hexagon in every "
        "training and test window.",
    )
    min_test_positives: int = Field(
        10, ge=0, description="Skip a city with fewer hotspot hex-days in any test window."
    )
    chance_factor: float = Field(
        2.0, ge=1, description="A candidate's PR AUC must be at least this many times chance."
    )
    publish: bool = Field(
        True,
        description="Publish the decision and forecast; false: a backtest that only records.",
    )

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


def param_schemas() -> dict[str, dict[str, Any]]:
    """Each field's JSON schema (type, bounds, default, description), in field order: what
    the DAG declares as its Params, so a bound is written once."""
    properties = RetrainConfig.model_json_schema()["properties"]
    return {name: _plain(schema) for name, schema in properties.items()}


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """Without pydantic's titles; `anyOf: [X, null]` as `type: [X's type, "null"]` (the form
    Airflow's trigger page renders as an optional field)."""
    plain = {k: v for k, v in schema.items() if k not in ("title", "anyOf")}
    options = schema.get("anyOf", [])
    if len(options) == 2 and {"type": "null"} in options:
        inner = next(o for o in options if o != {"type": "null"})
        plain.update({**inner, "type": [inner["type"], "null"]})
    return plain
