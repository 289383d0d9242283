"""The weekly hotspot model retrain of every city, downstream of the four city DAGs.

Parsing imports only `airflow.sdk` and the light contract and config modules; features,
scikit-learn and h3 load inside the tasks (`citypulse.model.tasks`).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_INCLUDE = Path(__file__).resolve().parents[1] / "include"
if str(_INCLUDE) not in sys.path:  # the package ships beside dags/, not installed
    sys.path.insert(0, str(_INCLUDE))

from airflow.sdk import DAG, CronTriggerTimetable, Param, TriggerRule, task, task_group  # noqa: E402

from citypulse.alerts import on_failure_alert  # noqa: E402
from citypulse.dag_specs import city_dag_specs  # noqa: E402
from citypulse.factory import table_asset  # noqa: E402
from citypulse.model.config import (  # noqa: E402
    CANDIDATE_KINDS,
    DEFAULTS,
    H3_COLUMNS,
    HORIZON_DAYS,
    MIN_TRAIN_DAYS,
)

DAG_ID = "hotspot_retrain"
# Monday 12:00 UTC: every city's Sunday is loaded by then (Seattle's local midnight run ends
# about 07:00-08:00 UTC), with hours to spare for the city DAGs' retries.
SCHEDULE = "0 12 * * 1"

# Broken contracts are reported by dags/city_pipelines.py; the healthy cities still retrain.
_specs = sorted(city_dag_specs()[0], key=lambda c: c.dag_id)
CITY_IDS = [c.dag_id for c in _specs]
CITY_ASSETS = [table_asset(c.table) for c in _specs]

DOC_MD = f"""# Weekly hotspot retrain

Predicts whether an H3 hexagon becomes a **hotspot** on a local day: its incident count reaches
the city's threshold, the `hotspot_quantile` (default {DEFAULTS.hotspot_quantile:.0%}) of
hex-day counts in the training window (at least 1).

Per city (a mapped task group, so one city's trouble does not stop the others):

1. `check_freshness` reads `citypulse.ingest_runs` and `citypulse.incidents`; a city whose data
   ends more than `max_staleness_days` before yesterday (local time) is **skipped** with a
   `HOTSPOT_RETRAIN_SKIPPED` warning.
2. `train` builds features from `citypulse.hex_daily_counts` (lags 1 and 7, 7- and 28-day means,
   long-run mean, neighbour means, weekday, public holiday; each from days before the row's
   day), splits by time (train, then the last `test_days`), evaluates the persistence and
   trailing-mean baselines, logistic regression and the `model_kind` candidate, registers them
   in `citypulse.model_runs` and promotes the candidate only if it beats both baselines on PR
   AUC and is within `champion_tolerance` of the current champion on the same test days.
3. `predict` writes the champion's probabilities for the next {HORIZON_DAYS} days per hexagon to
   `citypulse.hotspot_predictions`; `citypulse.hotspot_map` adds each hexagon's GeoJSON shape.

`report` logs the metrics table of the run. Scheduled weekly ({SCHEDULE}, UTC); the city
tables are declared as inlets (lineage) rather than as the schedule, because every city loads
daily and one stalled city must not hold the others back.
"""

with DAG(
    dag_id=DAG_ID,
    description="Weekly H3 hotspot model per city: baselines, registry, next-week forecast",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
    start_date=datetime(2025, 1, 6, tzinfo=UTC),
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
    params={
        "cities": Param(
            CITY_IDS,
            type="array",
            items={"type": "string", "enum": CITY_IDS},
            minItems=1,
            uniqueItems=True,
            description="Cities (city DAG ids) to retrain.",
        ),
        "training_days": Param(
            DEFAULTS.training_days,
            type="integer",
            minimum=MIN_TRAIN_DAYS,
            maximum=730,
            description="Days in the training window, before the test window.",
        ),
        "test_days": Param(
            DEFAULTS.test_days,
            type="integer",
            minimum=7,
            maximum=90,
            description="Days in the test window: the most recent loaded days.",
        ),
        "h3_resolution": Param(
            DEFAULTS.h3_resolution,
            type="integer",
            enum=sorted(H3_COLUMNS),
            description="H3 resolution of the hexagons (7: ~5 km², 8: ~0.7 km²).",
        ),
        "model_kind": Param(
            DEFAULTS.model_kind,
            type="string",
            enum=list(CANDIDATE_KINDS),
            description="The candidate model that may be promoted.",
        ),
        "max_staleness_days": Param(
            DEFAULTS.max_staleness_days,
            type="integer",
            minimum=0,
            maximum=60,
            description="Skip a city whose data ends more than this many days before yesterday.",
        ),
        "champion_tolerance": Param(
            DEFAULTS.champion_tolerance,
            type="number",
            minimum=0,
            maximum=1,
            description="How much lower than the champion's PR AUC a candidate may score.",
        ),
        "hotspot_quantile": Param(
            DEFAULTS.hotspot_quantile,
            type="number",
            exclusiveMinimum=0.5,
            exclusiveMaximum=1,
            description="Quantile of training hex-day counts that makes the hotspot threshold.",
        ),
    },
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
        @task(inlets=CITY_ASSETS)
        def check_freshness(city: str, **context: Any) -> dict[str, Any]:
            from citypulse.model import tasks

            return tasks.check_freshness(city, context)

        @task
        def train(freshness: dict[str, Any], **context: Any) -> dict[str, Any]:
            from citypulse.model import tasks

            return tasks.train(freshness, context)

        @task
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
