"""Schema drift kept in the warehouse (`schema_changes`), alerted once, fatal when a required
column is gone.

Every run's extract compares the portal's columns with the contract (`drift`) before it reads
a row. A difference is recorded by the first run that sees it and alerted then (a warning-level
`CITYPULSE_ALERT` line); later runs that see the same difference add nothing; the first run
that no longer sees it marks it resolved. A difference that changes (a column retyped again)
is a new one. A required column gone fails the run at once, after the record, naming the
column and the contract file: nothing is read or loaded. Imported only inside tasks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from citypulse.contracts.contract import Contract
from citypulse.exceptions import SchemaDrift
from citypulse.pipeline.drift import SchemaChange, schema_changes
from citypulse.portal.metadata import ViewMetadata
from citypulse.settings import CONTRACTS_DIR
from citypulse.warehouse.types import Cursor

log = logging.getLogger(__name__)

# Serialises the record of one dataset's drift (two runs of one DAG at once record it once).
DRIFT_LOCK = 7_340_002


def check_schema(
    contract: Contract, run_id: str, view: ViewMetadata, *, task_id: str = "", try_number: str = ""
) -> list[SchemaChange]:
    """Compare, record and alert the portal's schema changes; SchemaDrift (terminal) when a
    required column is gone. Returns the changes the portal shows now."""
    from citypulse.dags.alerts import warning_alert
    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.tables import ensure_schema

    changes = schema_changes(contract, view)
    with connect() as conn, conn.cursor() as cur:
        ensure_schema(cur)
        new = record_changes(cur, contract, run_id, changes)
    if changes:
        log.warning(
            "%s: the portal's columns differ from the contract (%s): %s",
            contract.dag_id,
            "new this run" if new else "recorded by an earlier run",
            "; ".join(c.describe() for c in changes),
        )
    if new:
        reason = (
            f"schema drift at {contract.portal}/{contract.dataset_id}: "
            + "; ".join(c.describe() for c in new)
            + f" (contract {contract_file(contract.dag_id)})"
        )
        payload = {"dag_id": contract.dag_id, "task_id": task_id, "run_id": run_id}
        warning_alert({**payload, "try_number": try_number, "reason": reason})
    gone = [c for c in changes if c.fatal]
    if gone:
        names = ", ".join(f"`{c.column}`" for c in gone)
        raise SchemaDrift(
            f"{contract.dag_id}: the portal {contract.portal}/{contract.dataset_id} no longer "
            f"has the required column(s) {names} (its view metadata lists no such field); "
            "no row was read and nothing was loaded. Update the contract "
            f"{contract_file(contract.dag_id)} (map `source` to the column's new name, or make "
            "it optional), then clear the run from `extract`"
        )
    return changes


def record_changes(
    cur: Cursor, contract: Contract, run_id: str, changes: list[SchemaChange]
) -> list[SchemaChange]:
    """Record the changes not already open, resolve the open ones no longer seen; the new."""
    from citypulse.warehouse.sqlfiles import render

    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DRIFT_LOCK, contract.dag_id))
    cur.execute(render("drift/open_changes.sql"), {"dag_id": contract.dag_id})
    open_ = {tuple(row[1:]): row[0] for row in cur.fetchall()}
    seen = {(c.change, c.column, c.before, c.after): c for c in changes}
    resolved = [id_ for key, id_ in open_.items() if key not in seen]
    if resolved:
        cur.execute(
            render("drift/resolve_changes.sql"),
            {"dag_id": contract.dag_id, "run_id": run_id, "ids": resolved},
        )
        log.info("%s: %d schema change(s) no longer seen: resolved", contract.dag_id, len(resolved))
    new = [change for key, change in seen.items() if key not in open_]
    for change in new:
        cur.execute(
            render("drift/record_change.sql"),
            {
                "dag_id": contract.dag_id,
                "dataset": f"{contract.portal}/{contract.dataset_id}",
                "run_id": run_id,
                "change": change.change,
                "column": change.column,
                "before": change.before,
                "after": change.after,
                "required": change.required,
            },
        )
    return new


def contract_file(dag_id: str, directory: Path = CONTRACTS_DIR) -> Path:
    """The YAML file holding the contract of `dag_id` (`<dag_id>.yaml` by convention)."""
    import yaml

    conventional = directory / f"{dag_id}.yaml"
    if conventional.is_file():
        return conventional
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and raw.get("dag_id") == dag_id:
            return path
    return conventional
