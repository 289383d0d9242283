"""One city's retrain, step by step, independent of Airflow (the DAG's tasks call these).

freshness -> features and time split -> baselines, reference and candidate evaluated on the
test window -> registry rows and artifacts -> promotion decision -> the champion's forecast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from citypulse.contracts import Contract
from citypulse.model import features, models, registry
from citypulse.model.config import (
    BASELINE_KINDS,
    DECISION_THRESHOLD,
    FEATURES,
    HORIZON_DAYS,
    SEED,
    CitySkipped,
    RetrainConfig,
)
from citypulse.model.freshness import Freshness, read_freshness
from citypulse.model.metrics import evaluate
from citypulse.warehouse import connect

log = logging.getLogger(__name__)


def ensure_registry(dsn: str | None = None) -> None:
    """The registry tables, in a transaction of their own: the DDL lock it takes is shared
    with the city loads and must not be held while models are registered."""
    with connect(dsn) as conn, conn.cursor() as cur:
        registry.ensure_registry(cur)


def fresh_city(
    contract: Contract, config: RetrainConfig, reference: datetime, dsn: str | None = None
) -> Freshness:
    """The city's freshness; CitySkipped if it is too stale to train."""
    with connect(dsn) as conn, conn.cursor() as cur:
        freshness = read_freshness(cur, contract.dag_id, contract.timezone, reference)
    problem = freshness.problem(config.max_staleness_days)
    if problem is not None:
        raise CitySkipped(f"stale data, not retrained: {problem}")
    return freshness


def load_features(
    contract: Contract, windows: features.Windows, config: RetrainConfig, dsn: str | None = None
) -> Any:
    """The feature frame of the windows (plus the serving day) from the warehouse."""
    holidays = holiday_calendar(contract, windows)
    with connect(dsn) as conn, conn.cursor() as cur:
        return features.build_features(cur, contract.dag_id, config.h3_column, windows, holidays)


def holiday_calendar(contract: Contract, windows: features.Windows) -> set[date]:
    last = windows.serving_day + timedelta(days=HORIZON_DAYS)
    return features.holiday_dates(contract, range(windows.feature_start.year, last.year + 1))


@dataclass
class Evaluation:
    """Every model's test metrics and the fitted learned models of one city."""

    split: features.Split
    metrics: dict[str, dict[str, Any]]
    estimators: dict[str, Any]


def evaluate_models(data: features.Split, config: RetrainConfig) -> Evaluation:
    """Baselines scored, learned models fitted on training rows, all judged on the test rows."""
    metrics: dict[str, dict[str, Any]] = {}
    estimators: dict[str, Any] = {}
    for kind in config.model_kinds():
        if kind in BASELINE_KINDS:
            scores = models.baseline_scores(kind, data.test, data.threshold)
        else:
            estimators[kind] = models.fit(kind, data.train)
            scores = models.model_scores(estimators[kind], data.test)
        metrics[kind] = evaluate(data.test, scores)
    return Evaluation(data, metrics, estimators)


def role_of(kind: str, config: RetrainConfig) -> str:
    if kind in BASELINE_KINDS:
        return "baseline"
    return "candidate" if kind == config.model_kind else "reference"


def params_of(kind: str, config: RetrainConfig) -> dict[str, Any]:
    """What the registry keeps about how a model was made."""
    common = {
        "config": config.model_dump(exclude={"cities"}),
        "features": list(FEATURES),
        "seed": SEED,
    }
    if kind in BASELINE_KINDS:
        rule = "lag_1 >= threshold" if kind == "persistence" else f"{models.TRAILING_MEAN_FEATURE}"
        return {**common, "rule": rule}
    return {
        **common,
        "hyperparameters": models.HYPERPARAMETERS[kind],
        "decision_threshold": DECISION_THRESHOLD,
    }


def champion_score(
    previous: registry.Champion | None, data: features.Split, resolution: int
) -> float | None:
    """The champion's PR AUC on this run's test rows; its recorded one if it cannot be loaded."""
    if previous is None:
        return None
    recorded = previous.metrics.get(registry.HEADLINE)
    if previous.artifact_path is None:
        return recorded
    try:
        estimator, metadata = registry.load_artifact(previous.artifact_path)
    except Exception as exc:  # a missing file or an unpicklable old model: any of many errors
        log.warning(
            "champion %s cannot be loaded (%s): using its recorded PR AUC", previous.id, exc
        )
        return recorded
    if metadata.get("features") != list(FEATURES) or metadata.get("resolution") != resolution:
        log.warning("champion %s used other features: using its recorded PR AUC", previous.id)
        return recorded
    return evaluate(data.test, models.model_scores(estimator, data.test)).get(registry.HEADLINE)


def register(
    evaluation: Evaluation,
    contract: Contract,
    config: RetrainConfig,
    windows: features.Windows,
    dag_run_id: str,
    dsn: str | None = None,
) -> dict[str, Any]:
    """Register every model, save the learned ones, decide on the candidate; one transaction."""
    city, data = contract.dag_id, evaluation.split
    ids: dict[str, int] = {}
    ensure_registry(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        registry.lock_city(cur, city)
        for kind, metrics in evaluation.metrics.items():
            run = registry.ModelRun(
                dag_run_id=dag_run_id,
                city=city,
                resolution=config.h3_resolution,
                model_kind=kind,
                role=role_of(kind, config),
                params=params_of(kind, config),
                windows=windows.as_dict(),
                label_threshold=data.threshold,
                metrics=metrics,
            )
            ids[kind] = registry.record(cur, run)
            if kind in evaluation.estimators:
                metadata = {
                    "city": city,
                    "model_kind": kind,
                    "resolution": config.h3_resolution,
                    "features": list(FEATURES),
                    "label_threshold": data.threshold,
                    "windows": windows.as_dict(),
                    "metrics": metrics,
                    "params": run.params,
                }
                registry.save_artifact(cur, ids[kind], run, evaluation.estimators[kind], metadata)
        candidate_id = ids[config.model_kind]
        previous = registry.champion(cur, city, config.h3_resolution)
        if previous is not None and previous.id == candidate_id:
            previous = None  # a retried task meeting its own earlier promotion
        decision = registry.decide(
            evaluation.metrics[config.model_kind],
            {k: evaluation.metrics[k] for k in BASELINE_KINDS},
            champion_score(previous, data, config.h3_resolution),
            config.champion_tolerance,
        )
        registry.apply_decision(cur, candidate_id, decision, previous)
    return {
        "city": city,
        "dag_run_id": dag_run_id,
        "resolution": config.h3_resolution,
        "windows": windows.as_dict(),
        "label_threshold": data.threshold,
        "model_run_ids": ids,
        "candidate": config.model_kind,
        "promoted": decision.promote,
        "decision": decision.reason,
        "pr_auc": {k: m.get(registry.HEADLINE) for k, m in evaluation.metrics.items()},
    }


def train_city(
    contract: Contract,
    config: RetrainConfig,
    freshness: Freshness,
    dag_run_id: str,
    dsn: str | None = None,
) -> dict[str, Any]:
    """Features, split, models, registry and promotion for one fresh city."""
    if freshness.first_loaded_day is None or freshness.last_day is None:
        raise CitySkipped(f"{contract.dag_id}: nothing loaded")
    windows = features.plan_windows(freshness.first_loaded_day, freshness.last_day, config)
    frame = load_features(contract, windows, config, dsn)
    data = features.split(frame, windows, config.hotspot_quantile)
    if data.train["hotspot"].nunique() < 2 or not data.test["hotspot"].any():
        raise CitySkipped(
            f"{contract.dag_id}: threshold {data.threshold:g} leaves a single class in the "
            "training or test window; nothing to learn"
        )
    evaluation = evaluate_models(data, config)
    log.info("%s: %s", contract.dag_id, _summary(evaluation.metrics))
    return register(evaluation, contract, config, windows, dag_run_id, dsn)


def publish_forecast(
    contract: Contract, config: RetrainConfig, windows: features.Windows, dsn: str | None = None
) -> dict[str, Any]:
    """The champion's probabilities for the next HORIZON_DAYS days per hexagon, upserted."""
    from citypulse.model import predict

    frame = load_features(contract, windows, config, dsn)
    serving = features.between(frame, windows.serving_day, windows.serving_day)
    holidays = holiday_calendar(contract, windows)
    ensure_registry(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        current = registry.champion(cur, contract.dag_id, config.h3_resolution)
        if current is None or current.artifact_path is None:
            raise CitySkipped(f"{contract.dag_id}: no champion model yet, nothing to predict")
        estimator, _ = registry.load_artifact(current.artifact_path)
        forecast = predict.forecast(estimator, serving, holidays)
        predict.upsert_cells(cur, forecast["h3_cell"].tolist(), config.h3_resolution)
        written = predict.upsert_predictions(
            cur, contract.dag_id, config.h3_resolution, current.id, windows.test_end, forecast
        )
    return {
        "city": contract.dag_id,
        "model_run_id": current.id,
        "model_kind": current.model_kind,
        "days": sorted({d.isoformat() for d in forecast["local_day"]}),
        "predictions": written,
        "flagged": int(forecast["predicted_hotspot"].sum()),
    }


def _summary(metrics: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{kind} PR AUC {m.get('pr_auc')}" for kind, m in metrics.items())
