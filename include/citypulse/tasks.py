"""What each task of a city DAG does, given its Airflow context.

The DAG factory imports this module inside the task functions only, so parsing `dags/`
never pays for pandas, Great Expectations, sodapy or h3. XComs carry small summaries and
file paths; the records themselves stay in the run's folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from citypulse.contracts import Contract, contract_by_id, load_contracts
from citypulse.exceptions import ContractError, PortalError, ValidationFailed
from citypulse.staging import (
    ACCEPTED_FILE,
    ACCEPTED_FORMAT,
    EXTRACT_FILE,
    REJECTS_FILE,
    remove_run_dir,
    run_dir,
)
from citypulse.windows import Window, window_for_dates, window_for_interval

log = logging.getLogger(__name__)


@contextmanager
def failing_fast() -> Iterator[None]:
    """Errors that a retry cannot fix (a refused query, a batch over its reject threshold)
    fail the task at once instead of burning Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except (PortalError, ValidationFailed, ContractError) as exc:
        if getattr(exc, "transient", False):
            raise
        raise AirflowFailException(str(exc)) from exc


def run_window(contract: Contract, context: dict[str, Any]) -> Window:
    """The run's window: Params `start_date`/`end_date` if given, else the data interval."""
    params = context.get("params") or {}
    start, end = params.get("start_date"), params.get("end_date")
    if start or end:
        if not start:
            raise ValueError("params: end_date needs start_date")
        return window_for_dates(start, end or start, contract.timezone)
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
    from citypulse.load import read_watermark
    from citypulse.warehouse import connect

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
    from citypulse.extract import extract_window

    started = time.time()
    contract = contract_by_id(dag_id)
    window = run_window(contract, context)
    folder = run_dir(dag_id, context["run_id"])
    incremental = absorbs_changes(context)
    watermark = current_watermark(contract) if incremental else None
    with failing_fast():
        result = extract_window(contract, window, folder / EXTRACT_FILE, watermark=watermark)
    return {
        "run_id": context["run_id"],
        "run_dir": str(folder),
        "window": window.as_dict(),
        "extracted": result.rows,
        "window_rows": result.window_rows,
        "change_rows": result.change_rows,
        "watermark_before": watermark,
        "incremental": incremental and contract.incremental is not None,
        "pages": result.pages,
        "started": started,
    }


def validate(dag_id: str, extracted: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from citypulse.staging import key_range, write_accepted, write_rejects
    from citypulse.typing_rules import type_extract
    from citypulse.validate import enforce, run_suite

    contract = contract_by_id(dag_id)
    window = Window.from_dict(extracted["window"])
    folder = Path(extracted["run_dir"])
    batch = type_extract(contract, folder / EXTRACT_FILE, extracted["window_rows"])
    if len(batch.frame) != extracted["extracted"]:
        raise RuntimeError(
            f"{folder / EXTRACT_FILE} holds {len(batch.frame)} records, extract reported "
            f"{extracted['extracted']}: rerun the extract task"
        )
    report = run_suite(contract, batch, window)
    with failing_fast():
        enforce(contract, batch, report)
    rejected = batch.rejected_mask
    accepted_rows = batch.frame[~rejected]
    accepted = write_accepted(
        accepted_rows, contract, folder / ACCEPTED_FILE, run_id=extracted["run_id"]
    )
    key_field = contract.key_column.wire_name
    positions = np.flatnonzero(rejected).tolist()
    write_rejects(
        (
            {"record": record, "reason": "; ".join(batch.reasons[i]), "key": record.get(key_field)}
            for i, record in zip(positions, batch.raw_records(positions), strict=True)
        ),
        folder / REJECTS_FILE,
    )
    log.info(
        "%s: %d extracted, %d accepted, %d rejected (%.2f%%)",
        dag_id,
        report.extracted,
        accepted,
        report.rejected,
        100 * report.rejected_share,
    )
    return {
        **extracted,
        "accepted": accepted,
        "rejected": report.rejected,
        "validation": report.as_dict(),
        "watermark": batch.newest_change if extracted["incremental"] else None,
        "key_range": key_range(accepted_rows, contract),
        "accepted_format": ACCEPTED_FORMAT,
    }


def load(dag_id: str, validated: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    from citypulse.load import load_batch
    from citypulse.warehouse import connect

    if validated.get("accepted_format") != ACCEPTED_FORMAT:
        # Validated by an earlier CityPulse (a run in flight across an upgrade): its COPY
        # file has another layout. The extract file is still there: type it again.
        log.warning("%s: accepted rows in an older layout: validating again", dag_id)
        validated = validate(dag_id, validated)
    contract = contract_by_id(dag_id)
    folder = Path(validated["run_dir"])
    with connect() as conn:
        result = load_batch(
            conn,
            contract,
            run_id=validated["run_id"],
            window=Window.from_dict(validated["window"]),
            accepted_path=folder / ACCEPTED_FILE,
            rejects_path=folder / REJECTS_FILE,
            extracted=validated["extracted"],
            accepted=validated["accepted"],
            validation=validated["validation"],
            started=validated["started"],
            window_rows=validated["window_rows"],
            change_rows=validated["change_rows"],
            watermark=validated["watermark"],
            key_range=validated.get("key_range"),
        )
    remove_run_dir(folder)
    return result.as_dict()


def reconcile(dag_id: str, validated: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Soft-delete rows gone from the portal, when due (or forced by the `reconcile` param)."""
    from citypulse.reconcile import reconcile_window, trailing_window
    from citypulse.warehouse import connect

    contract = contract_by_id(dag_id)
    window = Window.from_dict(validated["window"])
    forced = bool((context.get("params") or {}).get("reconcile"))
    target = window if forced else trailing_window(contract, window)
    if target is None:
        return {"due": False}
    with connect() as conn, failing_fast():
        result = reconcile_window(contract, target, validated["run_id"], conn)
    return {"due": True, **result.as_dict()}


def build_views(dag_id: str) -> list[str]:
    from citypulse import views
    from citypulse.warehouse import connect

    contracts, _ = load_contracts()
    contract = next(c for c in contracts if c.dag_id == dag_id)
    with connect() as conn, conn.cursor() as cur:
        return views.build_views(cur, contract, contracts)


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
    raise ValueError(f"{dag_id}: no step {step!r} in a city DAG")
