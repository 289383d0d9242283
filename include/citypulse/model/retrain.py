"""One city's retrain, step by step, independent of Airflow (the DAG's tasks call these).

freshness (as of a day) -> the records known then -> coverage gate -> features and folds ->
volume gate -> every model on every fold -> registry rows and artifacts -> which model is
published (promotion) -> the published model's forecast.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from citypulse.contracts.contract import Contract
from citypulse.model import features, models, promotion, registry
from citypulse.model.backtest import Backtest, Fitted, run_backtest
from citypulse.model.config import (
    BASELINE_KINDS,
    FEATURES,
    HORIZON_DAYS,
    SEED,
    CitySkipped,
    RetrainConfig,
)
from citypulse.model.freshness import Freshness, as_of_instant, read_freshness
from citypulse.model.gates import Gates, coverage_gates
from citypulse.model.metrics import evaluate
from citypulse.model.report import significant
from citypulse.warehouse.connection import connect
from citypulse.warehouse.types import Cursor

log = logging.getLogger(__name__)


def ensure_registry(dsn: str | None = None) -> None:
    """The registry tables, in a transaction of their own: the DDL lock it takes is shared
    with the city loads and must not be held while models are registered."""
    with connect(dsn) as conn, conn.cursor() as cur:
        registry.ensure_registry(cur)


def reference_for(contract: Contract, config: RetrainConfig, run_time: datetime) -> datetime:
    """What the run is judged against: the `as_of` day's local midnight, else the run time."""
    return run_time if config.as_of is None else as_of_instant(config.as_of, contract.timezone)


def fresh_city(
    contract: Contract, config: RetrainConfig, reference: datetime, dsn: str | None = None
) -> Freshness:
    """The city's freshness; CitySkipped if it is too stale to train."""
    with connect(dsn) as conn, conn.cursor() as cur:
        freshness = read_freshness(cur, contract.dag_id, contract.timezone, reference)
    # Data `publication_lag_days` old is as fresh as the portal gets.
    problem = freshness.problem(config.max_staleness_days + contract.model.publication_lag_days)
    if problem is not None:
        raise CitySkipped(f"stale data, not retrained: {problem}")
    return freshness


def load_features(
    contract: Contract,
    windows: features.Windows,
    config: RetrainConfig,
    known_at: datetime | None = None,
    dsn: str | None = None,
) -> Any:
    """The feature frame of the windows (plus the serving day), as known at `known_at`."""
    frame, _ = load_known(contract, windows, config, known_at, dsn)
    return frame


def load_known(
    contract: Contract,
    windows: features.Windows,
    config: RetrainConfig,
    known_at: datetime | None,
    dsn: str | None = None,
) -> tuple[Any, Any]:
    """(feature frame, daily coverage) of the windows from the records known at `known_at`."""
    holidays = holiday_calendar(contract, windows)
    with connect(dsn) as conn, conn.cursor() as cur:
        frame = features.build_features(
            cur, contract.dag_id, config.h3_column, windows, holidays, known_at
        )
        return frame, features.daily_coverage(cur)


def holiday_calendar(contract: Contract, windows: features.Windows) -> set[date]:
    last = windows.forecast_start + timedelta(days=HORIZON_DAYS)
    return features.holiday_dates(contract, range(windows.feature_start.year, last.year + 1))


def role_of(kind: str, config: RetrainConfig) -> str:
    if kind in BASELINE_KINDS:
        return "baseline"
    return "candidate" if kind == config.model_kind else "reference"


def params_of(
    kind: str, config: RetrainConfig, flag_threshold: float, fit: Fitted | None = None
) -> dict[str, Any]:
    """What the registry keeps about how a model was made, how it flags and calibrates."""
    common: dict[str, Any] = {
        "config": config.model_dump(mode="json", exclude={"cities"}),
        "features": list(FEATURES),
        "seed": SEED,
        "flag_threshold": _json_number(flag_threshold),
    }
    if fit is not None:
        common["calibration"] = fit.calibration.as_dict()
    if kind in BASELINE_KINDS:
        fitted = {"fitted": fit.params} if fit is not None and fit.params else {}
        return {**common, "rule": models.BASELINE_RULES[kind], **fitted}
    return {**common, "hyperparameters": models.HYPERPARAMETERS[kind]}


def _json_number(value: float) -> float | None:
    return None if value == float("inf") else value


def champion_score(
    previous: registry.Champion | None, data: features.Split, resolution: int
) -> float | None:
    """A learned champion's PR AUC on this run's newest test rows (its recorded one if it
    cannot be loaded); None for no champion or a published baseline (nothing to defend)."""
    if previous is None or previous.role == "baseline":
        return None
    recorded = previous.metrics.get(promotion.HEADLINE)
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
    scores = models.flagged(models.probabilities(estimator, data.test), float("inf"))
    return evaluate(data.test, scores).get(promotion.HEADLINE)


def register(
    backtest: Backtest,
    contract: Contract,
    config: RetrainConfig,
    as_of: date,
    dag_run_id: str,
    dsn: str | None = None,
) -> dict[str, Any]:
    """Register every model, save the newest fold's learned ones, decide which model the
    city publishes; one transaction."""
    city, last = contract.dag_id, backtest.last
    windows = last.windows.as_dict()
    ids: dict[str, int] = {}
    ensure_registry(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        registry.lock_city(cur, city)
        for kind in backtest.kinds():
            run = registry.ModelRun(
                dag_run_id=dag_run_id,
                city=city,
                resolution=config.h3_resolution,
                model_kind=kind,
                role=role_of(kind, config),
                params=params_of(kind, config, last.thresholds[kind], last.fits.get(kind)),
                windows=windows,
                label_threshold=last.split.threshold,
                metrics=backtest.summary(kind),
                as_of=as_of,
            )
            ids[kind] = registry.record(cur, run)
            if kind in last.estimators:
                metadata = {
                    "city": city,
                    "model_kind": kind,
                    "resolution": config.h3_resolution,
                    "features": list(FEATURES),
                    "label_threshold": last.split.threshold,
                    "flag_threshold": run.params["flag_threshold"],
                    "windows": windows,
                    "metrics": last.metrics[kind],
                    "params": run.params,
                }
                registry.save_artifact(cur, ids[kind], run, last.estimators[kind], metadata)
        previous = registry.champion(cur, city, config.h3_resolution)
        if previous is not None and previous.id in ids.values():
            previous = None  # a retried task meeting its own earlier decision
        decision = promotion.decide(
            promotion.judge(backtest, config),
            last.metrics[config.model_kind].get(promotion.HEADLINE),
            champion_score(previous, last.split, config.h3_resolution),
            config,
        )
        apply(cur, decision, ids, config, previous)
    return {
        "city": city,
        "dag_run_id": dag_run_id,
        "resolution": config.h3_resolution,
        "as_of": as_of.isoformat(),
        "windows": windows,
        "label_threshold": last.split.threshold,
        "model_run_ids": ids,
        "candidate": config.model_kind,
        "published": decision.published if config.publish else None,
        "decision": decision.reason,
        "pr_auc": {k: backtest.summary(k).get(promotion.HEADLINE) for k in backtest.kinds()},
    }


def apply(
    cur: Cursor,
    decision: promotion.Decision,
    ids: dict[str, int],
    config: RetrainConfig,
    previous: registry.Champion | None,
) -> None:
    """Record the decision on the candidate's row and publish what it names (not in a
    backtest run with `publish` false: there the decision is only recorded)."""
    candidate = ids[config.model_kind]
    if not config.publish:
        reason = f"backtest (publish false), nothing published; the decision: {decision.reason}"
        registry.record_decision(cur, candidate, reason, decision.evidence)
        return
    if decision.published is not None:
        registry.publish(cur, ids[decision.published], decision.reason, decision.evidence, previous)
    if decision.published != config.model_kind:
        registry.record_decision(cur, candidate, decision.reason, decision.evidence)


def store_gates(
    gates: Gates, city: str, config: RetrainConfig, as_of: date, dag_run_id: str, dsn: str | None
) -> None:
    """Store the gate figures; CitySkipped naming the failed gate if one failed."""
    problem = gates.problem()
    ensure_registry(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        registry.record_gates(
            cur, dag_run_id, city, config.h3_resolution, as_of, gates.as_dict(), problem
        )
    if problem is not None:
        raise CitySkipped(f"{city} as of {as_of}: {problem}")


def train_city(
    contract: Contract,
    config: RetrainConfig,
    freshness: Freshness,
    dag_run_id: str,
    dsn: str | None = None,
) -> dict[str, Any]:
    """Gates, folds, models, registry and publication for one fresh city."""
    city = contract.dag_id
    if freshness.first_loaded_day is None or freshness.last_day is None:
        raise CitySkipped(f"{city}: nothing loaded")
    as_of = freshness.local_yesterday + timedelta(days=1)
    lag = contract.model.publication_lag_days
    # The data as it stood on as_of: events up to as_of - lag - 1 (published by then).
    last_day = features.data_end(freshness.last_day, as_of, lag)
    folds = features.plan_folds(freshness.first_loaded_day, last_day, config, lag)
    frame, daily = load_known(
        contract, features.feature_span(folds), config, freshness.reference, dsn
    )
    gates = coverage_gates(daily, folds, config.min_coverage, config.min_test_positives)
    splits: list[features.Split] = []
    if gates.problem() is None:
        splits = [features.split(frame, fold, config.hotspot_quantile) for fold in folds]
        gates = gates.with_positives(splits)
    store_gates(gates, city, config, as_of, dag_run_id, dsn)
    for number, data in enumerate(splits, start=1):
        if data.train["hotspot"].nunique() < 2 or not data.test["hotspot"].any():
            raise CitySkipped(
                f"{city}: threshold {data.threshold:g} leaves a single class in fold {number}'s "
                "training or test window; nothing to learn"
            )
    backtest = run_backtest(splits, folds, config)
    log.info("%s as of %s: %s", city, as_of, _summary(backtest))
    result = register(backtest, contract, config, as_of, dag_run_id, dsn)
    return {**result, "known_at": freshness.reference.isoformat()}


def publish_forecast(
    contract: Contract,
    config: RetrainConfig,
    windows: features.Windows,
    known_at: datetime | None = None,
    dsn: str | None = None,
) -> dict[str, Any]:
    """The published model's forecast for HORIZON_DAYS days from `windows.forecast_start`
    per hexagon, from the serving day's features (the data as it stood then), as the
    backtest scored it; replaces every earlier row of those days."""
    from citypulse.model import predict

    if not config.publish:
        raise CitySkipped(f"{contract.dag_id}: a backtest run (publish false) writes no forecast")
    frame = load_features(contract, windows, config, known_at, dsn)
    serving = features.between(frame, windows.serving_day, windows.serving_day)
    holidays = holiday_calendar(contract, windows)
    ensure_registry(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        current = registry.champion(cur, contract.dag_id, config.h3_resolution)
        if current is None:
            raise CitySkipped(f"{contract.dag_id}: no published model yet, nothing to predict")
        forecast = predict.forecast(current, serving, holidays, start=windows.forecast_start)
        predict.upsert_cells(cur, forecast["h3_cell"].tolist(), config.h3_resolution)
        written = predict.replace_predictions(
            cur, contract.dag_id, config.h3_resolution, current.id, windows.test_end, forecast
        )
    return {
        "city": contract.dag_id,
        "model_run_id": current.id,
        "model_kind": current.model_kind,
        "role": current.role,
        "days": sorted({d.isoformat() for d in forecast["local_day"]}),
        "predictions": written,
        "flagged": int(forecast["predicted_hotspot"].sum()),
    }


def _summary(backtest: Backtest) -> str:
    parts = []
    for kind in backtest.kinds():
        summary = backtest.summary(kind)
        parts.append(
            f"{kind} PR AUC {significant(summary.get('pr_auc'))} "
            f"± {significant(summary['sd'].get('pr_auc'))}"
        )
    return ", ".join(parts)
