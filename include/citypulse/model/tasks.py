"""What each task of the `hotspot_retrain` DAG does, given its Airflow context.

The DAG file imports this module inside its task functions only. A city that cannot be
trained (stale data, too little history, no champion to forecast with) is skipped with a
WARNING naming why; the other cities' tasks carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from citypulse.contracts.contract import contract_by_id, load_contracts
from citypulse.exceptions import HandoffError
from citypulse.model.config import CitySkipped, RetrainConfig
from citypulse.model.handoff import CityRetrain
from citypulse.warehouse.connection import connect

log = logging.getLogger(__name__)


@contextmanager
def skipping_city(city: str) -> Iterator[None]:
    """Turn CitySkipped into an Airflow skip of this city's task, with a WARNING."""
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        yield
    except CitySkipped as exc:
        log.warning("HOTSPOT_RETRAIN_SKIPPED city=%s: %s", city, exc)
        raise AirflowSkipException(f"{city}: {exc}") from None


def config_of(context: dict[str, Any]) -> RetrainConfig:
    return RetrainConfig.from_params(context.get("params"))


def reference_time(context: dict[str, Any]) -> datetime:
    """The run's instant: the logical date, else the run's run-after (an `as_of` param
    replaces it per city: retrain.reference_for)."""
    logical = context.get("logical_date")
    if logical is not None:
        return logical
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return run_after if run_after is not None else datetime.now(UTC)


def select_cities(context: dict[str, Any]) -> list[str]:
    """The Param `cities` that have a valid contract feeding `incidents`, sorted; unknown
    names fail the run; datasets without a place (or an `incidents:` mapping) are skipped
    with a HOTSPOT_RETRAIN_SKIPPED warning naming why."""
    config = config_of(context)
    contracts, errors = load_contracts()
    for error in errors:
        log.warning("broken contract not retrained: %s", error)
    known = {c.dag_id for c in contracts}
    unknown = sorted(set(config.cities) - known)
    if unknown:
        raise ValueError(f"params.cities names unknown cities {unknown}; known: {sorted(known)}")
    for contract in contracts:
        if not contract.modelled:
            log.warning(
                "HOTSPOT_RETRAIN_SKIPPED city=%s: not modelled, its contract has no %s",
                contract.dag_id,
                "`incidents:` mapping" if contract.mapped else "coordinates (latitude/longitude)",
            )
    modelled = {c.dag_id for c in contracts if c.modelled}
    return sorted(set(config.cities) & modelled)


def ensure_registry() -> None:
    from citypulse.model import retrain

    retrain.ensure_registry()


def check_freshness(city: str, context: dict[str, Any]) -> dict[str, Any]:
    """The city's hand-off (`CityRetrain`) with its freshness; skipped if it is stale."""
    from citypulse.model.retrain import fresh_city, reference_for

    contract, config = contract_by_id(city), config_of(context)
    reference = reference_for(contract, config, reference_time(context))
    with skipping_city(city):
        freshness = fresh_city(contract, config, reference)
    log.info("%s is fresh: %s", city, freshness.as_dict())
    return CityRetrain.of_freshness(freshness).to_xcom()


def train(fresh: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The hand-off with what was trained, registered and published."""
    from citypulse.model.retrain import train_city

    handoff = handed(fresh, "train")
    with skipping_city(handoff.city):
        trained = train_city(
            contract_by_id(handoff.city), config_of(context), handoff.fresh(), context["run_id"]
        )
    return handoff.with_trained(trained).to_xcom()


def predict(trained: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The hand-off with the forecast the published model wrote."""
    from citypulse.model.retrain import publish_forecast

    handoff = handed(trained, "predict")
    windows, known_at = handoff.windows(), handoff.require_trained().known_at
    with skipping_city(handoff.city):
        forecast = publish_forecast(
            contract_by_id(handoff.city), config_of(context), windows, known_at
        )
    return handoff.with_forecast(forecast).to_xcom()


def handed(data: Any, task: str) -> CityRetrain:
    """The upstream task's hand-off; a task failed without retries if it cannot be read
    (only clearing the city from `check_freshness` helps)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return CityRetrain.from_xcom(data, task=task)
    except HandoffError as exc:
        raise AirflowFailException(str(exc)) from None


def report(context: dict[str, Any]) -> list[dict[str, Any]]:
    """Log the run's metrics table (city x model) and which cities were not retrained."""
    from citypulse.model import registry
    from citypulse.model.report import run_summary

    with connect() as conn, conn.cursor() as cur:
        rows = registry.run_metrics(cur, context["run_id"])
        gates = registry.run_gates(cur, context["run_id"])
    trained = {r["city"] for r in rows}
    missing = sorted(set(config_of(context).cities) - trained)
    if missing:
        log.warning("HOTSPOT_RETRAIN_SKIPPED cities not retrained this run: %s", missing)
    log.info("hotspot retrain metrics:\n%s", run_summary(rows, gates))
    return [
        {
            "city": r["city"],
            "model_kind": r["model_kind"],
            "pr_auc": r["metrics"].get("pr_auc"),
            "pr_auc_sd": (r["metrics"].get("sd") or {}).get("pr_auc"),
            "promoted": r["promoted"],
            "decision": r["decision"],
        }
        for r in rows
    ]
