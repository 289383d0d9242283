"""Reconciliation: rows the portal deleted are marked deleted in the warehouse, never dropped.

Periodically (per contract) the keys the portal still has for a trailing window are compared
with the warehouse's; keys gone from the portal get `cp_deleted_at`. A row that comes back is
restored by the next load. A portal answer that would delete too much at once is refused.
Imported only inside tasks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from psycopg2 import sql

from citypulse.contracts import Contract
from citypulse.exceptions import PortalError
from citypulse.settings import SCHEMA
from citypulse.socrata import SocrataClient
from citypulse.windows import Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    window_start: str
    window_end: str
    portal_keys: int
    warehouse_keys: int
    marked_deleted: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trailing_window(contract: Contract, window: Window) -> Window | None:
    """The window to reconcile after a run of `window`, or None when none is due."""
    if contract.reconcile is None:
        return None
    if window.end.date().toordinal() % contract.reconcile.every_days:
        return None
    start = window.end - timedelta(days=contract.reconcile.trailing_days)
    return Window(start, window.end, window.timezone)


def portal_keys(contract: Contract, window: Window, client: SocrataClient) -> set[str]:
    """Every key the portal has for the window (`$select=<key>`, paged in key order)."""
    key = contract.key_column.wire_name
    base: dict[str, Any] = {
        "select": key,
        "where": window.soql(contract.event_column.wire_name),
        "order": f"{key} ASC",
    }
    if contract.system_fields:
        base["exclude_system_fields"] = False
    return {
        str(row[key])
        for page in client.paged(base, "reconcile", contract.page_size)
        for row in page
        if key in row
    }


def mark_deleted(
    conn: Any, contract: Contract, window: Window, keys: set[str], run_id: str
) -> ReconcileResult:
    """Soft-delete the window's rows whose keys the portal no longer has (one transaction)."""
    assert contract.reconcile is not None
    table = sql.Identifier(SCHEMA, contract.table)
    key = sql.Identifier(contract.key)
    event = sql.Identifier(contract.event_time)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT {key}::text FROM {table} WHERE {event} >= %s AND {event} < %s "
                "AND cp_deleted_at IS NULL"
            ).format(key=key, table=table, event=event),
            (window.start, window.end),
        )
        stored = {row[0] for row in cur.fetchall()}
        missing = sorted(stored - keys)
        limit = contract.reconcile.max_delete_share
        if stored and len(missing) > limit * len(stored):
            raise PortalError(
                f"{contract.dag_id}: the portal lacks {len(missing)} of {len(stored)} stored "
                f"keys for {window.start} .. {window.end} (over the {limit:.0%} limit); "
                "refusing to mark them deleted. Check the portal, then rerun reconcile."
            )
        if missing:
            cur.execute(
                sql.SQL(
                    "UPDATE {table} SET cp_deleted_at = now() "
                    "WHERE {key}::text = ANY(%s) AND cp_deleted_at IS NULL"
                ).format(table=table, key=key),
                (missing,),
            )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (dag_id, run_id, window_start, window_end, portal_keys, "
                "warehouse_keys, marked_deleted) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            ).format(sql.Identifier(SCHEMA, "reconciliations")),
            (
                contract.dag_id,
                run_id,
                window.start,
                window.end,
                len(keys),
                len(stored),
                len(missing),
            ),
        )
    if missing:
        log.warning(
            "%s: marked %d row(s) deleted (gone from the portal): %s",
            contract.dag_id,
            len(missing),
            missing[:20],
        )
    return ReconcileResult(
        window.start.isoformat(), window.end.isoformat(), len(keys), len(stored), len(missing)
    )


def reconcile_window(contract: Contract, window: Window, run_id: str, conn: Any) -> ReconcileResult:
    """Compare the portal's keys for `window` with the warehouse's and mark the missing."""
    with SocrataClient(contract) as client:
        keys = portal_keys(contract, window, client)
    return mark_deleted(conn, contract, window, keys, run_id)
