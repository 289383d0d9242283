"""The weekly hotspot model retrain of every mapped city (one with an `incidents:` mapping).

Parsing imports only `airflow.sdk` and the light contract and config modules; features,
scikit-learn and h3 load inside the tasks (`citypulse.model.tasks`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, Param, TriggerRule, task, task_group

from citypulse.dags.alerts import on_failure_alert
from citypulse.dags.factory import table_asset
from citypulse.dags.retrain_task import retrain_task
from citypulse.dags.specs import city_dag_specs
from citypulse.model.config import (
    DEFAULTS,
    HORIZON_DAYS,
    TOP_SHARE,
    param_schemas,
)

DAG_ID = "hotspot_retrain"
# Monday 12:00 UTC: every city's Sunday is loaded by then (Seattle's local midnight run ends
# about 07:00-08:00 UTC), with hours to spare for the city DAGs' retries.
SCHEDULE = "0 12 * * 1"

# Broken contracts are reported by dags/city_pipelines.py; the healthy cities still retrain.
# Only datasets that feed `incidents` (coordinates and an `incidents:` mapping) are modelled;
# `select_cities` names the others in its log.
_specs = sorted((c for c in city_dag_specs()[0] if c.modelled), key=lambda c: c.dag_id)
CITY_IDS = [c.dag_id for c in _specs]
CITY_ASSETS = [table_asset(c.table) for c in _specs]
# The earliest city's history start: a run (or backtest) for any day the data covers creates
# task instances; before it Airflow marks a run successful without running anything.
# catchup is off, so unpausing schedules only the latest week, never these years.
START = min((c.start_date for c in _specs), default=date(2001, 1, 1))
# Every Param as RetrainConfig declares it (type, bounds, default, description); `cities` also
# lists the known cities.
PARAMS = {
    name: Param(schema.pop("default", None), **schema) for name, schema in param_schemas().items()
}
# No modelled city at all (every dataset without a place): the DAG still parses, and its runs
# retrain nothing, saying why in `select_cities`' log.
PARAMS["cities"] = Param(
    CITY_IDS,
    type="array",
    items={"type": "string", "enum": CITY_IDS} if CITY_IDS else {"type": "string"},
    minItems=1 if CITY_IDS else 0,
    uniqueItems=True,
    description=PARAMS["cities"].description,
)

DOC_MD = f"""# Weekly hotspot retrain

Predicts whether an H3 hexagon becomes a **hotspot** on a local day: its incident count reaches
the city's threshold, the `hotspot_quantile` (default {DEFAULTS.hotspot_quantile:.0%}) of
hex-day counts in the training window (at least 1).

Per city (a mapped task group, so one city's trouble does not stop the others):

Everything is evaluated **as of** a local day: the param `as_of` (a backtest), else the run's
date. Only events before that day count, each record in the version the warehouse held then.

1. `check_freshness` reads `citypulse.ingest_runs` and `citypulse.incidents`; a city whose data
   ends more than `max_staleness_days` before the day before `as_of` (local time) is
   **skipped** with a `HOTSPOT_RETRAIN_SKIPPED` warning.
2. `train` reads the records known then (`citypulse.incident_versions`) and checks the
   **gates**: the share of records with a hexagon in every training and test window must reach
   `min_coverage`, every test window must hold `min_test_positives` hotspot hex-days, else the
   city is skipped naming the figure and the threshold (stored in `citypulse.retrain_gates`).
   It builds features (lags 1 and 7, 7- and 28-day means, long-run mean, neighbour means,
   weekday, public holiday; each from days before the row's day) and evaluates, on `folds`
   consecutive test windows of `test_days` (rolling origin, each after `training_days` of
   training), the persistence, trailing-mean and kernel-density baselines, logistic regression
   and the `model_kind` candidate; flags use a threshold tuned on training rows; PAI and PEI
   at {TOP_SHARE:.0%} of the hexagons. All go to `citypulse.model_runs` (mean, spread and
   per-fold values). The candidate is **published** only if its PR AUC lift over the best
   baseline holds across folds (lower end of the 90 % interval above zero), it scores
   `chance_factor` times chance, and is within `champion_tolerance` of the current champion;
   otherwise the best baseline is published. `citypulse.hotspot_publication` says which and why.
3. `predict` replaces the forecast rows of the next {HORIZON_DAYS} days with the published model's
   (flag, probability, expected count) in `citypulse.hotspot_predictions`;
   `citypulse.hotspot_map` adds each hexagon's GeoJSON shape. `publish=false` (a backtest)
   records the decision and changes nothing published.

`report` logs the metrics table of the run. Scheduled weekly ({SCHEDULE}, UTC); the city
tables are declared as inlets (lineage) rather than as the schedule, because every city loads
daily and one stalled city must not hold the others back.
"""

with DAG(
    dag_id=DAG_ID,
    description="Weekly H3 hotspot model per city: baselines, registry, next-week forecast",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
    start_date=datetime(START.year, START.month, START.day, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["citypulse", "h3", "model"],
    default_args={
        "owner": "citypulse",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    },
    params=PARAMS,
    on_failure_callback=on_failure_alert,
) as dag:

    @task
    def ensure_registry() -> None:
        from citypulse.model import tasks

        tasks.ensure_registry()

    @task
    def select_cities(**context: Any) -> list[str]:
        from citypulse.model import tasks

        return tasks.select_cities(context)

    @task_group(group_id="city")
    def retrain_city(city: str) -> Any:
        # Each task hands the next the city's CityRetrain (citypulse.model.handoff) as its
        # versioned XCom JSON, as the city DAGs hand a RunManifest.
        # `retrain_task` is `@task` that also tells OpenLineage the tables each task read and
        # wrote (citypulse.dags.lineage), when a transport is configured.
        @retrain_task(inlets=CITY_ASSETS)
        def check_freshness(city: str, **context: Any) -> dict[str, Any]:
            from citypulse.model import tasks

            return tasks.check_freshness(city, context)

        @retrain_task
        def train(fresh: dict[str, Any], **context: Any) -> dict[str, Any]:
            from citypulse.model import tasks

            return tasks.train(fresh, context)

        @retrain_task
        def predict(trained: dict[str, Any], **context: Any) -> dict[str, Any]:
            from citypulse.model import tasks

            return tasks.predict(trained, context)

        # TaskFlow passes XComArgs where the functions take their resolved values.
        return predict(train(check_freshness(city)))  # type: ignore[arg-type]

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def report(**context: Any) -> list[dict[str, Any]]:
        from citypulse.model import tasks

        return tasks.report(context)

    cities = select_cities()
    ensure_registry() >> cities
    retrain_city.expand(city=cities) >> report()
