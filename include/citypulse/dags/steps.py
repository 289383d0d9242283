"""The steps of a city DAG: one registry from step name to the function its task runs.

`CityStepOperator` takes a step by name when the DAG is built and binds the function then, so
a misspelled step is an import error of `dags/`, not a failure at run time. Every step takes
`(dag_id, upstream, context)`: `upstream` is the previous step's result (the run manifest in
XCom), `context` the task's Airflow context. The work itself is the pipeline's
(`citypulse.pipeline.run.WindowRun`); a step adds what belongs to Airflow: the run's window
from its params or data interval, and errors no retry can fix failing the task at once.

Light at module level (Airflow imports it when parsing `dags/`): everything heavy is
imported inside the steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from citypulse.exceptions import (
    ContractError,
    ManifestError,
    ParamsError,
    PortalError,
    RunFilesMissing,
    SchemaDrift,
    StorageError,
    ValidationFailed,
)
from citypulse.settings import RUN_RETENTION_DAYS

if TYPE_CHECKING:
    from citypulse.contracts.contract import Contract
    from citypulse.pipeline.manifest import RunManifest
    from citypulse.pipeline.run import WindowRun
    from citypulse.pipeline.windows import Window

log = logging.getLogger(__name__)

Context = Mapping[str, Any]
Step = Callable[[str, Any, Context], Any]

# Errors that say what is wrong and that no retry can fix unless they say they are transient.
_OPERATOR_ERRORS = (
    ParamsError,
    PortalError,
    ValidationFailed,
    ContractError,
    StorageError,
    RunFilesMissing,
    ManifestError,
    SchemaDrift,
)


@contextmanager
def failing_fast() -> Iterator[None]:
    """Errors that a retry cannot fix (a refused query, a batch over its reject threshold,
    a misconfigured storage root, expired run files) fail the task at once instead of
    burning Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except _OPERATOR_ERRORS as exc:
        if exc.transient:
            raise
        raise AirflowFailException(str(exc)) from exc


def run_window(contract: Contract, context: Context) -> Window:
    """The run's window: Params `start_date`/`end_date` if given, else the data interval.
    ParamsError when they ask for no window, or one longer than the contract allows."""
    from citypulse.pipeline.windows import window_for_dates, window_for_interval

    params = context.get("params") or {}
    start, end = params.get("start_date"), params.get("end_date")
    if start or end:
        if not start:
            raise ParamsError("params: end_date needs start_date")
        try:
            window = window_for_dates(start, end or start, contract.timezone)
        except ValueError as exc:
            raise ParamsError(f"params: {exc}") from None
        days = (window.end - window.start).days
        if days > contract.max_window_days:
            raise ParamsError(
                f"params: {start} .. {end} is {days:,} days, more than the "
                f"{contract.max_window_days:,} one run of {contract.dag_id} may load "
                "(max_window_days). Backfill it instead, one run a day: "
                f"citypulse backfill --dag-id {contract.dag_id} --from-date {start} "
                f"--to-date {end}"
            )
        return window
    interval_start = context.get("data_interval_start")
    interval_end = context.get("data_interval_end")
    if interval_start is None or interval_end is None or interval_start == interval_end:
        raise ValueError(
            "this run has no data interval (asset-triggered?): give params start_date/end_date"
        )
    return window_for_interval(interval_start, interval_end, contract.timezone)


def current_watermark(contract: Contract) -> str | None:
    """Where incremental capture stands for the dataset (None: capture the window only)."""
    if contract.incremental is None:
        return None
    from citypulse.pipeline.load.batch import read_watermark
    from citypulse.warehouse.connection import connect

    with connect() as conn, conn.cursor() as cur:
        return read_watermark(cur, contract)


def absorbs_changes(context: Context) -> bool:
    """Whether the run also absorbs changes to earlier days and may move the watermark:
    scheduled and plain manual runs do; backfills and explicit reloads load exactly their
    days."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    # The Task SDK hands a str enum, whose str() is "DagRunType.BACKFILL": use its value.
    run_type = getattr(run_type, "value", run_type)
    params = context.get("params") or {}
    return "backfill" not in str(run_type or "") and not params.get("start_date")


def read_manifest(upstream: Any, step: str) -> RunManifest:
    from citypulse.pipeline.manifest import RunManifest

    with failing_fast():
        return RunManifest.from_xcom(upstream, task=step)


def window_run(dag_id: str) -> WindowRun:
    """The dataset's `WindowRun` over the configured storage root."""
    from citypulse.contracts.contract import contract_by_id
    from citypulse.pipeline.run import WindowRun
    from citypulse.storage import StorageRoot

    return WindowRun(contract_by_id(dag_id), StorageRoot.configured())


def extract(dag_id: str, upstream: Any, context: Context) -> dict[str, Any]:
    """Check the storage root and the portal's schema (drift recorded and alerted; a required
    column gone fails at once), then write the window's records (and changes since the
    watermark) as parts under the run's prefix; returns the run manifest."""
    from citypulse.pipeline.drift_log import check_schema
    from citypulse.storage import run_prefix

    started = time.time()
    run = window_run(dag_id)
    with failing_fast():
        window = run_window(run.contract, context)
        run.root.check()  # before any portal request: a bad root fails here, naming itself
    incremental = absorbs_changes(context) and run.contract.incremental is not None
    watermark = current_watermark(run.contract) if incremental else None
    ti = context.get("ti") or context.get("task_instance")
    schema_check = partial(
        check_schema,
        run.contract,
        context["run_id"],
        task_id=str(getattr(ti, "task_id", "extract")),
        try_number=str(getattr(ti, "try_number", "")),
    )
    with failing_fast():
        manifest = run.extract(
            context["run_id"],
            run_prefix(dag_id, context["run_id"]),
            window,
            incremental=incremental,
            watermark=watermark,
            started=started,
            schema_check=schema_check,
        )
    return dict(manifest.to_xcom())


def validate(dag_id: str, upstream: Any, context: Context) -> dict[str, Any]:
    """Type and validate the extract parts; write the accepted rows and the rejects."""
    manifest = read_manifest(upstream, "validate")
    run = window_run(dag_id)
    with failing_fast():
        return dict(run.validate(manifest).to_xcom())


def load(dag_id: str, upstream: Any, context: Context) -> dict[str, Any]:
    """Load the validated run in one transaction. Its objects stay (for the retention
    period), so clearing this task reruns it."""
    from citypulse.warehouse.connection import connect

    manifest = read_manifest(upstream, "load")
    run = window_run(dag_id)
    with failing_fast():
        validated = manifest.require_validated()
        run.require_objects(manifest, [*validated.accepted, *validated.rejects], "load")
    with connect() as conn:
        result = run.load(conn, manifest)
    return dict(result.as_dict())


def reconcile(dag_id: str, upstream: Any, context: Context) -> dict[str, Any]:
    """The partition audit, when due (or forced by the `reconcile` param): every day of the
    history compared with the portal, the days that differ read again and reconciled."""
    from citypulse.pipeline.reconcile import audit, audit_due

    manifest = read_manifest(upstream, "reconcile")
    run = window_run(dag_id)
    forced = bool((context.get("params") or {}).get("reconcile"))
    if run.contract.reconcile is None or not (forced or audit_due(run.contract, manifest.window)):
        return {"due": False}
    with failing_fast():
        result = audit(run.contract, manifest.run_id, run.root, f"{manifest.prefix}/audit")
    return {"due": True, **result.as_dict()}


def build_views(dag_id: str, upstream: Any, context: Context) -> list[str]:
    from citypulse.contracts.contract import load_contracts
    from citypulse.pipeline import views

    contracts, _ = load_contracts()
    contract = next(c for c in contracts if c.dag_id == dag_id)
    return views.build_city_views(contract, contracts)


def housekeeping(dag_id: str, upstream: Any, context: Context) -> dict[str, Any]:
    """Remove the run files of this DAG's runs whose last write is older than the retention
    period (never the current run's)."""
    from citypulse.pipeline.run_files import expire_runs
    from citypulse.storage import StorageRoot, run_prefix

    root = StorageRoot.configured()
    with failing_fast():
        removed, kept = expire_runs(
            root,
            dag_id,
            keep=run_prefix(dag_id, context["run_id"]),
            retention=timedelta(days=RUN_RETENTION_DAYS),
            now=datetime.now(UTC),
        )
    if removed:
        log.info("%s: removed the expired run files of %s", dag_id, removed)
    return {"removed": len(removed), "kept": kept, "retention_days": RUN_RETENTION_DAYS}


# The one registry of a city DAG's steps, in the order a run takes them.
STEPS: dict[str, Step] = {
    "extract": extract,
    "validate": validate,
    "load": load,
    "reconcile": reconcile,
    "build_views": build_views,
    "housekeeping": housekeeping,
}


def step_named(name: str) -> Step:
    """The step called `name`; ValueError naming the known steps otherwise."""
    try:
        return STEPS[name]
    except KeyError:
        known = ", ".join(STEPS)
        raise ValueError(f"no step {name!r} in a city DAG; the steps are {known}") from None
