"""The DAG factory: one Airflow DAG per data contract (its `CityDagSpec`).

Only `airflow.sdk` and light CityPulse modules are imported here: this module runs on every
parse of `dags/`; the steps (`citypulse.dags.steps`) import the heavy work inside each step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.param import ParamsDict

from citypulse.dags.alerts import on_deadline_missed, on_failure_alert
from citypulse.dags.operators import city_step
from citypulse.dags.specs import CityDagSpec
from citypulse.settings import RETRY_DELAY_SECONDS, SCHEMA, SOCRATA_POOL

DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


class CityDAG(DAG):
    """A city DAG: an Airflow DAG whose `test()` runs without its Deadline alert and leaves
    its params as they were.

    Airflow 3.3.2's `dag.test()` (and so `airflow dags test`) cannot finish a run of a DAG
    with a deadline: it looks the alert up by its serialized dict instead of its id and exits
    1 after every task succeeded. A run in the foreground needs no lateness alert; runs of the
    scheduler (scheduled, manual, backfill) keep it. `dag.test()` also runs the tasks in this
    process, where resolving the run's conf sets the values of the DAG's Param objects: the
    next `test()` of the same DAG object would take that conf as its defaults.
    """

    def test(self, *args: Any, **kwargs: Any) -> Any:
        owners = (self.params, *(task.params for task in self.tasks))
        params = [
            owner.get_param(name)
            for owner in owners
            if isinstance(owner, ParamsDict)
            for name in owner
        ]
        values = [param.value for param in params]
        deadline, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = deadline
            for param, value in zip(params, values, strict=True):
                param.value = value


def table_asset(table: str) -> Asset:
    """The Asset a city DAG updates: its typed warehouse table."""
    return Asset(
        name=f"citypulse_{table}",
        uri=f"postgres://warehouse:5432/citypulse/{SCHEMA}/{table}",
        group="citypulse",
    )


def doc_md(spec: CityDagSpec) -> str:
    """The DAG's documentation page, written from its spec."""
    event = spec.event_time
    if spec.event_time_of_day:
        event += f"` + `{spec.event_time_of_day}"
    rows = "\n".join(
        f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {c.description} |"
        for c in spec.columns
    )
    return f"""# {spec.title}

{spec.description.strip()}

| | |
|---|---|
| Portal | https://{spec.portal}/resource/{spec.dataset_id}.json |
| Timezone | {spec.timezone} (one run = one local calendar day) |
| Record key | `{spec.key}` |
| Event time | `{event}` |
| Warehouse table | `{SCHEMA}.{spec.table}` |
| Reject threshold | {spec.reject_threshold:.0%} of a run's records |

Tasks: `extract` (Socrata SODA API, pages of {spec.page_size:,} by row id, each query checked
against the portal's count, pool `{SOCRATA_POOL}`; plus records of other days changed since
the watermark)
→ `validate` (Great Expectations suite from the contract; failing rows quarantined in
`{SCHEMA}.rejects`) → `load` (COPY + upsert on the key, audit row in `{SCHEMA}.ingest_runs`,
watermark advanced in the same transaction) → `reconcile` (every few days: the partition
audit compares every day the warehouse holds with the portal and repairs the days that
differ, however old) → `build_views`. Tasks hand each other a run manifest in XCom
and keys of objects under the storage root (`CITYPULSE_STORAGE_URL`), so each may run on any
worker; `housekeeping` removes run files older than their retention period.

To reload a window in one run, trigger with params `start_date` and `end_date`
(local dates, both inclusive; at most {spec.max_window_days} days). For more, use a backfill.

| column | type | required | notes |
|---|---|---|---|
{rows}
"""


def deadline_alert(spec: CityDagSpec) -> DeadlineAlert:
    """Alert when a run has not finished `deadline_hours` after it was queued."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=spec.deadline_hours),
        callback=AsyncCallback(
            on_deadline_missed,
            kwargs={"dag_id": spec.dag_id, "hours": spec.deadline_hours},
        ),
    )


def build_city_dag(spec: CityDagSpec) -> CityDAG:
    """Build the extract → validate → load → build_views DAG for one spec."""
    with CityDAG(
        dag_id=spec.dag_id,
        description=spec.title,
        doc_md=doc_md(spec),
        schedule=CronDataIntervalTimetable(spec.schedule, timezone=spec.timezone),
        start_date=datetime.combine(
            spec.start_date, datetime.min.time(), tzinfo=ZoneInfo(spec.timezone)
        ),
        catchup=False,
        max_active_runs=4,
        tags=sorted({"citypulse", *spec.tags}),
        default_args={
            "owner": spec.owner,
            "retries": spec.retries,
            "retry_delay": timedelta(seconds=RETRY_DELAY_SECONDS),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            # A task hung on a portal (or anything) is stopped and retried, never left running.
            "execution_timeout": timedelta(minutes=spec.task_timeout_minutes),
            # Per task as well: names the failing task, and runs wherever the task ran.
            "on_failure_callback": on_failure_alert,
        },
        params={
            "start_date": Param(
                None,
                type=["null", "string"],
                pattern=DATE_PATTERN,
                format="date",
                description="Reload from this local date (inclusive) instead of the interval.",
            ),
            "end_date": Param(
                None,
                type=["null", "string"],
                pattern=DATE_PATTERN,
                format="date",
                description="Reload up to this local date (inclusive, at most "
                f"{spec.max_window_days} days after start_date); needs start_date.",
            ),
            "reconcile": Param(
                False,
                type="boolean",
                description="Also run the partition audit: every day the warehouse holds "
                "compared with the portal, the days that differ read again and reconciled "
                "(otherwise done every few days per the contract).",
            ),
        },
        on_failure_callback=on_failure_alert,
        deadline=deadline_alert(spec),
        render_template_as_native_obj=True,
    ) as dag:
        extract = city_step("extract", pool=SOCRATA_POOL)
        validate = city_step("validate", upstream=extract.output)
        load = city_step("load", upstream=validate.output, outlets=[table_asset(spec.table)])
        reconcile = city_step("reconcile", upstream=validate.output, pool=SOCRATA_POOL)
        load >> reconcile
        city_step("build_views", upstream=reconcile.output)
        # Independent of the run's own tasks: removes other runs' expired run files.
        city_step("housekeeping")
    return dag
