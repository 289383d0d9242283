"""Reconcile: the partition audit, so the warehouse equals the portal however old a change.

Per local day of the dataset's whole history, one grouped query asks the portal for its
record count and newest change (`date_trunc_ymd`, `count(*)`, `max()`); the warehouse
answers the same from its rows (not deleted) and open rejects, for every day it holds (the
windows of its loads: a day never loaded is a backfill's business, not the audit's). A day
differs when the counts do, or when the portal holds a change newer than any the warehouse
has seen for that day (not for a portal that re-stamps every row: there counts alone can
tell). Differing days, newest first and at most `max_repair_days` an audit, are read again
from the portal (count-verified), validated and loaded (inserts, updates, restores), and
their rows the portal no longer holds are soft-deleted, one transaction per stretch of days.
Nothing is believed below the outage floor, and a day whose grouped count keeps disagreeing
with its records is reported as disputed, not read again (`reconcile_checks`).
Every audit is recorded, a refused one too.
Imported only inside tasks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from psycopg2 import sql
from psycopg2.extras import Json, execute_values

from citypulse.contracts.contract import Contract
from citypulse.exceptions import PortalError
from citypulse.pipeline.reconcile_checks import (
    NO_ROWS,
    DayCount,
    Dispute,
    outage,
    short_re_read,
    still_disputed,
)
from citypulse.pipeline.run import WindowRun
from citypulse.pipeline.run_files import read_ndjson
from citypulse.pipeline.windows import Window
from citypulse.storage import StorageRoot
from citypulse.warehouse.sqlfiles import as_text, identifier_or_null, render
from citypulse.warehouse.summary import serves_audit, summaries
from citypulse.warehouse.types import Cursor

log = logging.getLogger(__name__)

# Days read again in one go: consecutive differing days, at most this many.
STRETCH_DAYS = 31


@dataclass
class AuditResult:
    """What one audit found and did. `outcome` is `complete`, or `refused` with `refusal`
    saying why (an outage, a delete over the guard); `disputed` lists the days whose grouped
    count disagrees with their records, as a repair found them before."""

    days_checked: int
    days_differing: int
    days_repaired: int
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    rejects_resolved: int = 0
    seconds: float = 0.0
    repaired: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "complete"
    refusal: str | None = None
    days_disputed: int = 0
    disputed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_due(contract: Contract, window: Window) -> bool:
    """Whether a run of `window` audits: every `reconcile.every_days` by the window's end."""
    if contract.reconcile is None:
        return False
    return window.end.date().toordinal() % contract.reconcile.every_days == 0


def compares_changes(contract: Contract) -> bool:
    """Whether a day's newest change means something (a change column, not re-stamped)."""
    incremental = contract.incremental
    return incremental is not None and not incremental.restamps


def canonical(value: Any) -> str | None:
    """A timestamp (portal text or database value) as comparable text, UTC if it has a zone."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def portal_days(contract: Contract, client: Any) -> dict[date, DayCount]:
    """The portal's count and newest change per local day (one grouped query)."""
    column = contract.change_column if compares_changes(contract) else None
    change = column.wire_name if column is not None else None
    days: dict[date, DayCount] = {}
    for row in client.days(contract.event_column.wire_name, change):
        if row.get("day"):  # records without an event time belong to no day
            day = date.fromisoformat(str(row["day"])[:10])
            days[day] = DayCount(int(row.get("n", 0)), canonical(row.get("changed")))
    return days


def warehouse_days(
    cur: Cursor, contract: Contract, first: date | None = None, last: date | None = None
) -> dict[date, DayCount]:
    """The warehouse's rows (not deleted) plus open rejects, and newest change, per day (of
    first .. last, when given)."""
    change = contract.change_column
    # The per-day summary when its days are the event column's; else the table, counted.
    query = "warehouse_days.sql" if serves_audit(contract) else "warehouse_days_scan.sql"
    cur.execute(
        render(
            f"reconcile/{query}",
            table=contract.table,
            days=summaries(contract).days,
            key=contract.key,
            key_type=sql.SQL(contract.key_column.type),
            event=contract.event_time,
            change=identifier_or_null(None if change is None else change.name),
        ),
        {"dag_id": contract.dag_id, "first": first, "last": last},
    )
    return {day: DayCount(int(n), canonical(changed)) for day, n, changed in cur.fetchall()}


def covered_days(cur: Cursor, contract: Contract) -> set[date]:
    """The days the warehouse holds: those of its successful loads' windows."""
    cur.execute(render("reconcile/covered_days.sql"), {"dag_id": contract.dag_id})
    return {day for (day,) in cur.fetchall()}


def verified_days(cur: Cursor, contract: Contract) -> dict[date, DayCount]:
    """Each day's portal signature when the warehouse last agreed with it."""
    cur.execute(render("reconcile/verified_days.sql"), {"dag_id": contract.dag_id})
    return {day: DayCount(int(n), changed) for day, n, changed in cur.fetchall()}


def disputes(cur: Cursor, contract: Contract) -> dict[date, Dispute]:
    """The days a repair found with a grouped count off their records."""
    cur.execute(render("reconcile/disputes.sql"), {"dag_id": contract.dag_id})
    return {
        day: Dispute(int(grouped), int(records), changed, reported)
        for day, grouped, records, changed, reported in cur.fetchall()
    }


def differing_days(
    portal: dict[date, DayCount],
    warehouse: dict[date, DayCount],
    verified: dict[date, DayCount],
    compare_changes: bool,
) -> list[date]:
    """Days whose counts differ, or (comparing changes) whose portal holds a change newer
    than any the warehouse has or agreed with; newest first."""
    differing = []
    for day in set(portal) | set(warehouse):
        theirs, ours = portal.get(day, NO_ROWS), warehouse.get(day, NO_ROWS)
        if theirs.rows != ours.rows:
            differing.append(day)
        elif compare_changes and theirs.changed is not None:
            seen = [ours.changed, verified.get(day, NO_ROWS).changed]
            known = max((c for c in seen if c is not None), default=None)
            if known is None or theirs.changed > known:
                differing.append(day)
    return sorted(differing, reverse=True)


def stretches(days: list[date], longest: int = STRETCH_DAYS) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) stretches of at most `longest` days, newest first."""
    found: list[tuple[date, date]] = []
    for day in sorted(days):
        if found and day == found[-1][1] + timedelta(days=1):
            first, _ = found[-1]
            if (day - first).days < longest:
                found[-1] = (first, day)
                continue
        found.append((day, day))
    return sorted(found, reverse=True)


def audit(contract: Contract, run_id: str, root: StorageRoot, prefix: str) -> AuditResult:
    """Compare every day of the history with the portal; repair the days that differ.
    PortalError, the audit recorded as refused, when the portal's answer reads as an outage
    (transient) or a repair would delete too much."""
    from citypulse.portal.client import SocrataClient
    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    assert contract.reconcile is not None
    began = time.time()
    with SocrataClient(contract) as client:
        portal = portal_days(contract, client)
    with connect() as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
        covered = covered_days(cur, contract)
        warehouse = warehouse_days(cur, contract)
        verified = verified_days(cur, contract)
        known = disputes(cur, contract)
    # Only the days the warehouse holds: a day never loaded is a backfill's, not a repair.
    portal = {day: count for day, count in portal.items() if day in covered}
    warehouse = {day: count for day, count in warehouse.items() if day in covered}
    changes = compares_changes(contract)
    differing = differing_days(portal, warehouse, verified, changes)
    disputed = [d for d in differing if still_disputed(d, portal, warehouse, known, changes)]
    to_repair = [day for day in differing if day not in disputed]
    chosen = to_repair[: contract.reconcile.max_repair_days]
    result = AuditResult(len(covered), len(to_repair), 0)
    result.days_disputed = len(disputed)
    result.disputed = [known[day].as_dict(day) for day in disputed]
    refusal = outage(contract, portal, warehouse)
    if refusal is not None:
        _refuse(contract, run_id, result, began, PortalError(refusal, transient=True))
    try:
        _repair(contract, run_id, root, prefix, chosen, portal, warehouse, result)
    except PortalError as exc:
        _refuse(contract, run_id, result, began, exc)
    result.seconds = round(time.time() - began, 3)
    with connect() as conn, conn.cursor() as cur:
        found = _recount(cur, contract, chosen, portal, result)
        # Days that agree: those that did, and those read again whose grouped count holds.
        unsettled = set(differing) - (set(chosen) - set(found))
        agreed = [day for day in portal if day not in unsettled]
        _store_days(cur, contract, agreed, portal, found, disputed, known)
        _record(cur, contract, run_id, result)
    _log(contract, result, len(to_repair) > len(chosen), disputed, known)
    return result


def _repair(
    contract: Contract,
    run_id: str,
    root: StorageRoot,
    prefix: str,
    chosen: list[date],
    portal: dict[date, DayCount],
    warehouse: dict[date, DayCount],
    result: AuditResult,
) -> None:
    """Read the chosen days again, stretch by stretch, adding what changed to `result`."""
    assert contract.reconcile is not None
    # A broken portal answer must not delete the table: bound what one audit deletes.
    deletable = int(contract.reconcile.max_delete_share * sum(d.rows for d in warehouse.values()))
    run = WindowRun(contract, root)
    for first, last in stretches(chosen):
        counted = sum(portal.get(day, NO_ROWS).rows for day in _days(first, last))
        repair = repair_days(
            run,
            first,
            last,
            run_id,
            f"{prefix}/{first}",
            deleted_before=result.rows_deleted,
            deletable=deletable,
            counted=counted,
        )
        result.rows_inserted += repair.inserted
        result.rows_updated += repair.updated
        result.rows_deleted += repair.deleted
        result.rejects_resolved += repair.rejects_resolved
        result.days_repaired += len(_days(first, last))
        for day in _days(first, last):
            ours, theirs = warehouse.get(day), portal.get(day)
            result.repaired.append(
                {
                    "day": day.isoformat(),
                    "portal_rows": theirs.rows if theirs else 0,
                    "warehouse_rows": ours.rows if ours else 0,
                    "portal_changed": theirs.changed if theirs else None,
                    "warehouse_changed": ours.changed if ours else None,
                }
            )


def _recount(
    cur: Cursor,
    contract: Contract,
    chosen: list[date],
    portal: dict[date, DayCount],
    result: AuditResult,
) -> dict[date, Dispute]:
    """The repaired days counted again: each holds the day's records as read (count-verified).
    Those whose grouped count says otherwise, as disputes found; each repaired day's entry
    in `result` gets its `read_rows`."""
    if not chosen:
        return {}
    now = warehouse_days(cur, contract, min(chosen), max(chosen))
    for entry in result.repaired:
        entry["read_rows"] = now.get(date.fromisoformat(entry["day"]), NO_ROWS).rows
    found = {}
    for day in chosen:
        theirs, read = portal.get(day, NO_ROWS), now.get(day, NO_ROWS).rows
        if read != theirs.rows:
            found[day] = Dispute(theirs.rows, read, theirs.changed)
    return found


def _store_days(
    cur: Cursor,
    contract: Contract,
    agreed: list[date],
    portal: dict[date, DayCount],
    found: dict[date, Dispute],
    disputed: list[date],
    known: dict[date, Dispute],
) -> None:
    """Agreed days as verified (disputed no more); disputes found, kept; disputed days
    reported (once)."""
    execute_values(
        cur,
        as_text(render("reconcile/verify_days.sql"), cur),
        [(contract.dag_id, day, portal[day].rows, portal[day].changed) for day in agreed],
        page_size=1000,
    )
    cur.execute(render("reconcile/clear_disputes.sql"), {"dag_id": contract.dag_id, "days": agreed})
    execute_values(
        cur,
        as_text(render("reconcile/record_disputes.sql"), cur),
        [
            (contract.dag_id, day, d.grouped_rows, d.record_rows, d.changed)
            for day, d in found.items()
        ],
        page_size=1000,
    )
    unreported = [day for day in disputed if not known[day].reported]
    cur.execute(
        render("reconcile/report_disputes.sql"), {"dag_id": contract.dag_id, "days": unreported}
    )


def _record(cur: Cursor, contract: Contract, run_id: str, result: AuditResult) -> None:
    fields = result.as_dict()
    cur.execute(
        render("reconcile/record_audit.sql"),
        {
            "dag_id": contract.dag_id,
            "run_id": run_id,
            **fields,
            "repaired": Json(fields["repaired"]),
            "disputed": Json(fields["disputed"]),
        },
    )


def _refuse(
    contract: Contract, run_id: str, result: AuditResult, began: float, error: PortalError
) -> NoReturn:
    """Record the audit as refused (with what it did before), then raise `error`."""
    from citypulse.warehouse.connection import connect

    result.outcome, result.refusal = "refused", str(error)
    result.seconds = round(time.time() - began, 3)
    with connect() as conn, conn.cursor() as cur:
        _record(cur, contract, run_id, result)
    log.error("%s: partition audit refused: %s", contract.dag_id, error)
    raise error


def _log(
    contract: Contract,
    result: AuditResult,
    deferred: bool,
    disputed: list[date],
    known: dict[date, Dispute],
) -> None:
    log.info(
        "%s: partition audit checked %d days, %d differed, %d repaired (+%d ~%d -%d rows, "
        "%d rejects resolved)%s",
        contract.dag_id,
        result.days_checked,
        result.days_differing,
        result.days_repaired,
        result.rows_inserted,
        result.rows_updated,
        result.rows_deleted,
        result.rejects_resolved,
        "; the rest next audit" if deferred else "",
    )
    for day in disputed:
        dispute = known[day]
        log.log(
            logging.INFO if dispute.reported else logging.WARNING,
            "%s: %s: the portal's grouped count disagrees with its records: it counts %d, "
            "reading the day gives %d (as the last repair found); not read again%s",
            contract.dag_id,
            day,
            dispute.grouped_rows,
            dispute.record_rows,
            " (reported before)" if dispute.reported else "",
        )


@dataclass(frozen=True)
class Repair:
    """What repairing one stretch of days changed."""

    inserted: int
    updated: int
    deleted: int
    rejects_resolved: int


def repair_days(
    run: WindowRun,
    first: date,
    last: date,
    run_id: str,
    prefix: str,
    *,
    deleted_before: int,
    deletable: int,
    counted: int,
) -> Repair:
    """Read the days [first, last] again through the same extract and validate as any run
    (its validation report kept, as stage `reconcile`), and make the warehouse hold exactly
    what the portal does for them, in one transaction: load (insert, update, restore),
    soft-delete the rows whose keys the portal no longer has (PortalError, changing nothing,
    when with the `deleted_before` of this audit they pass `deletable`), resolve rejects
    that no longer stand. A re-read below the outage floor of the days' grouped count
    (`counted`) changes nothing (transient PortalError)."""
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.warehouse.connection import connect

    contract = run.contract
    window = window_for_dates(first.isoformat(), last.isoformat(), contract.timezone)
    extracted = run.extract(run_id, prefix, window)
    refusal = short_re_read(contract, first, last, counted, extracted.extracted.rows)
    if refusal is not None:
        raise PortalError(refusal, transient=True)
    manifest = run.validate(extracted, stage="reconcile")
    key = contract.key_column.wire_name
    keys = sorted(
        {
            str(record[key])
            for part in manifest.extracted.parts
            for record in read_ndjson(run.root.object(part.key))
            if record.get(key) is not None
        }
    )
    with connect() as conn:
        loaded = run.load(conn, manifest)
        with conn.cursor() as cur:
            cur.execute(
                render(
                    "reconcile/mark_deleted.sql",
                    table=contract.table,
                    key=contract.key,
                    event=contract.event_time,
                ),
                {"start": window.start, "end": window.end, "keys": keys},
            )
            deleted = [row[0] for row in cur.fetchall()]
            if deleted_before + len(deleted) > deletable:
                share = contract.reconcile.max_delete_share if contract.reconcile else 0
                raise PortalError(
                    f"{contract.dag_id}: the portal no longer holds {len(deleted)} stored rows "
                    f"of {first} .. {last}; with them this audit would delete "
                    f"{deleted_before + len(deleted)} rows, over the {share:.0%} of the "
                    "table one audit may delete. Nothing of these days was changed: check the "
                    "portal, then rerun with the `reconcile` param"
                )
            cur.execute(
                render(
                    "reconcile/resolve_rejects.sql",
                    table=contract.table,
                    key=contract.key,
                    key_type=sql.SQL(contract.key_column.type),
                ),
                {"dag_id": contract.dag_id, "first": first, "last": last, "keys": keys},
            )
            resolved = cur.rowcount
    if deleted:
        log.warning(
            "%s: marked %d row(s) of %s .. %s deleted (gone from the portal): %s",
            contract.dag_id,
            len(deleted),
            first,
            last,
            deleted[:20],
        )
    return Repair(loaded.inserted, loaded.updated, len(deleted), resolved)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
