"""What each task of a city DAG does, given its Airflow context.

The DAG factory imports this module inside the task functions only, so parsing `dags/`
never pays for pandas, Great Expectations, sodapy or h3. What a task hands the next is the
run manifest (`citypulse.pipeline.manifest`) in XCom; the records themselves are objects under the
storage root (`citypulse.storage`), so each task may run on any worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from citypulse.contracts.contract import Contract, contract_by_id, load_contracts
from citypulse.exceptions import (
    ContractError,
    ManifestError,
    ParamsError,
    PortalError,
    RunFilesMissing,
    StorageError,
    ValidationFailed,
)
from citypulse.pipeline.manifest import Part, RunManifest
from citypulse.pipeline.run_files import EXTRACT_PREFIX
from citypulse.pipeline.windows import Window, window_for_dates, window_for_interval
from citypulse.settings import RUN_RETENTION_DAYS
from citypulse.storage import StorageRoot, run_prefix

log = logging.getLogger(__name__)
# Errors that say what is wrong and that no retry can fix unless they say they are transient.
_OPERATOR_ERRORS = (
    ParamsError,
    PortalError,
    ValidationFailed,
    ContractError,
    StorageError,
    RunFilesMissing,
    ManifestError,
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


def run_window(contract: Contract, context: dict[str, Any]) -> Window:
    """The run's window: Params `start_date`/`end_date` if given, else the data interval.
    ParamsError when they ask for no window, or one longer than the contract allows."""
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


def absorbs_changes(context: dict[str, Any]) -> bool:
    """Whether the run also absorbs changes to earlier days and may move the watermark:
    scheduled and plain manual runs do; backfills and explicit reloads load exactly their
    days."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    # The Task SDK hands a str enum, whose str() is "DagRunType.BACKFILL": use its value.
    run_type = getattr(run_type, "value", run_type)
    params = context.get("params") or {}
    return "backfill" not in str(run_type or "") and not params.get("start_date")


def extract(dag_id: str, context: dict[str, Any]) -> dict[str, Any]:
    """Check the storage root, then write the window's records (and changes since the
    watermark) as parts under the run's prefix; returns the run manifest."""
    from citypulse.pipeline.extract import extract_window

    started = time.time()
    contract = contract_by_id(dag_id)
    root = StorageRoot.configured()
    with failing_fast():
        window = run_window(contract, context)
        root.check()  # before any portal request: a bad root fails here, naming itself
    incremental = absorbs_changes(context) and contract.incremental is not None
    watermark = current_watermark(contract) if incremental else None
    prefix = run_prefix(dag_id, context["run_id"])
    with failing_fast():
        extracted = extract_window(
            contract,
            window,
            root,
            f"{prefix}/{EXTRACT_PREFIX}",
            incremental=incremental,
            watermark=watermark,
        )
    manifest = RunManifest.of_window(
        dag_id,
        context["run_id"],
        prefix,
        window,
        extracted,
        started=started,
        incremental=incremental,
        watermark_before=watermark,
    )
    return manifest.to_xcom()


def read_manifest(upstream: Any, task: str) -> RunManifest:
    with failing_fast():
        return RunManifest.from_xcom(upstream, task=task)


def require_objects(manifest: RunManifest, root: StorageRoot, parts: list[Part], task: str) -> None:
    """Fail at once, saying to clear from `extract`, when an input object of `task` is gone."""
    for part in parts:
        if not root.exists(part.key):
            with failing_fast():
                raise RunFilesMissing(
                    f"{manifest.dag_id} run {manifest.run_id}: `{task}` needs {part.key} under "
                    f"the {root.described}, and it is gone (run files are kept "
                    f"{RUN_RETENTION_DAYS:g} days after a run's last write, then housekeeping "
                    "removes them). Clear this run from `extract` (Clear, with downstream) to "
                    "fetch the window again"
                )


def validate(dag_id: str, upstream: Any) -> dict[str, Any]:
    """Type and validate the extract parts; write the accepted rows and the rejects."""
    from citypulse.pipeline.validate.reports import record_validation
    from citypulse.pipeline.validate.suite import validate_run

    manifest = read_manifest(upstream, "validate")
    contract = contract_by_id(dag_id)
    root = StorageRoot.configured()
    require_objects(manifest, root, list(manifest.extracted.parts), "validate")
    with failing_fast():
        try:
            validated = validate_run(contract, manifest, root)
        except ValidationFailed as exc:
            record_validation(manifest, passed=False, report=exc.report, message=str(exc))
            raise
    record_validation(manifest, passed=True, report=validated.report, message=None)
    return manifest.with_validated(validated).to_xcom()


def load(dag_id: str, upstream: Any, context: dict[str, Any]) -> dict[str, Any]:
    """Load the validated run in one transaction. Its objects stay (for the retention
    period), so clearing this task reruns it."""
    from citypulse.pipeline.load.batch import load_batch
    from citypulse.warehouse.connection import connect

    manifest = read_manifest(upstream, "load")
    with failing_fast():
        validated = manifest.require_validated()
    contract = contract_by_id(dag_id)
    root = StorageRoot.configured()
    require_objects(manifest, root, [*validated.accepted, *validated.rejects], "load")
    with connect() as conn:
        result = load_batch(conn, contract, manifest, root)
    return result.as_dict()


def reconcile(dag_id: str, upstream: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The partition audit, when due (or forced by the `reconcile` param): every day of the
    history compared with the portal, the days that differ read again and reconciled."""
    from citypulse.pipeline.reconcile import audit, audit_due

    manifest = read_manifest(upstream, "reconcile")
    contract = contract_by_id(dag_id)
    forced = bool((context.get("params") or {}).get("reconcile"))
    if contract.reconcile is None or not (forced or audit_due(contract, manifest.window)):
        return {"due": False}
    with failing_fast():
        result = audit(
            contract, manifest.run_id, StorageRoot.configured(), f"{manifest.prefix}/audit"
        )
    return {"due": True, **result.as_dict()}


def build_views(dag_id: str) -> list[str]:
    from citypulse.pipeline import views
    from citypulse.warehouse.connection import connect

    contracts, _ = load_contracts()
    contract = next(c for c in contracts if c.dag_id == dag_id)
    with connect() as conn, conn.cursor() as cur:
        return views.build_views(cur, contract, contracts)


def housekeeping(dag_id: str, context: dict[str, Any]) -> dict[str, Any]:
    """Remove the run files of this DAG's runs whose last write is older than the retention
    period (never the current run's)."""
    from citypulse.pipeline.run_files import expire_runs

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


def run_step(step: str, dag_id: str, upstream: Any, context: dict[str, Any]) -> Any:
    """Run one step of a city DAG; `upstream` is the previous step's result."""
    if step == "extract":
        return extract(dag_id, context)
    if step == "validate":
        return validate(dag_id, upstream)
    if step == "load":
        return load(dag_id, upstream, context)
    if step == "reconcile":
        return reconcile(dag_id, upstream, context)
    if step == "build_views":
        return build_views(dag_id)
    if step == "housekeeping":
        return housekeeping(dag_id, context)
    raise ValueError(f"{dag_id}: no step {step!r} in a city DAG")
