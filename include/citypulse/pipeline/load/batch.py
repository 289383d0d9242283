"""Load: COPY a run's accepted rows into staging, upsert on the key, quarantine the rejects and
write the audit row, all in one transaction, so a run commits everything or nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from itertools import islice
from typing import TYPE_CHECKING, Any

from psycopg2 import sql
from psycopg2.errors import UniqueViolation
from psycopg2.extras import Json, execute_values

from citypulse.contracts.contract import Contract
from citypulse.pipeline.load.copystream import BLOCK_BYTES, PartStream
from citypulse.pipeline.manifest import RunManifest
from citypulse.pipeline.run_files import (
    Source,
    copy_columns,
    read_ndjson,
    stage_columns,
)
from citypulse.pipeline.windows import Window
from citypulse.settings import SCHEMA
from citypulse.storage import StorageRoot
from citypulse.warehouse.sqlfiles import as_text, identifiers, render
from citypulse.warehouse.tables import ensure_schema, ensure_table, history_table, table_columns
from citypulse.warehouse.types import Connection, Cursor

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
# Rejects are read and inserted this many at a time.
REJECTS_PAGE_ROWS = 1000


@dataclass(frozen=True)
class LoadResult:
    extracted: int
    loaded: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    seconds: float
    audit_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record_hash(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """A JSON value PostgreSQL's jsonb and text accept: a NUL character or a lone surrogate
    (which a record is rejected for holding) is kept as its six-character escape (`\\u0000`)."""
    if isinstance(value, str):
        value = value.replace("\x00", "\\u0000")
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _event_day(record: Any, contract: Contract) -> date | None:
    """The local day of a raw record's event time, if its first ten characters read as one."""
    value = record.get(contract.event_column.wire_name) if isinstance(record, dict) else None
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None


def quarantine_rejects(
    cur: Cursor, contract: Contract, rejects: Source | Sequence[Source], run_id: str, window: Window
) -> int:
    """Insert the run's rejects, a page at a time; a record already quarantined (a rerun) is
    not repeated."""
    rows = (
        (
            contract.dag_id,
            _storable(item.get("key")),
            item["reason"],
            Json(_storable(item["record"])),
            _record_hash(item["record"]),
            run_id,
            window.start,
            window.end,
            _event_day(item["record"], contract),
        )
        for source in _sources(rejects)
        for item in read_ndjson(source)
    )
    statement = as_text(render("load/rejects.sql"), cur)
    count = 0
    while page := list(islice(rows, REJECTS_PAGE_ROWS)):
        execute_values(cur, statement, page, page_size=REJECTS_PAGE_ROWS)
        count += len(page)
    return count


def upsert_accepted(
    cur: Cursor,
    contract: Contract,
    accepted: Source | Sequence[Source],
    key_range: Sequence[Any] | None = None,
    *,
    run_id: str,
) -> tuple[int, int]:
    """Write the accepted rows (one COPY file or several) into the dataset's table;
    (inserted, updated).

    When `key_range` (the batch's lowest and highest key) holds no stored key, the rows can
    only be new and are COPYed straight in: a backfill of new days or a first load pays no
    staging table. Otherwise, or when a key clashes after all (text keys compare in the
    database's collation), they go through a staging table and an upsert on the key.
    """
    columns = copy_columns(contract)
    sources = _sources(accepted)
    # Typed timestamptz values are UTC wall times (the file carries no offsets).
    cur.execute("SET LOCAL TIME ZONE 'UTC'")
    if key_range is not None and not _keys_stored(cur, contract, key_range):
        copied = _copy_new_rows(cur, contract, columns, sources)
        if copied is not None:
            return copied, 0
    return _stage_and_upsert(cur, contract, columns, sources, run_id)


def _sources(given: Source | Sequence[Source]) -> list[Source]:
    return list(given) if isinstance(given, list | tuple) else [given]  # type: ignore[list-item]


def _copy_each(cur: Cursor, command: str, sources: Sequence[Source]) -> int:
    """COPY every source, one after the other, in one statement fed by a thread that reads
    the next blocks while the server ingests (bytes: line breaks inside values stay as
    sent); rows."""
    with PartStream(sources) as stream:
        cur.copy_expert(command, stream, size=BLOCK_BYTES)
    return int(cur.rowcount)


def _keys_stored(cur: Cursor, contract: Contract, key_range: Sequence[Any]) -> bool:
    """Whether the table holds a key between the two (deleted rows count). SYMMETRIC: text
    keys were ordered by Python, the database orders them by its collation."""
    cur.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} BETWEEN SYMMETRIC %s AND %s)").format(
            sql.Identifier(SCHEMA, contract.table), sql.Identifier(contract.key)
        ),
        tuple(key_range),
    )
    return bool(cur.fetchone()[0])


def _copy_command(table: sql.Composable, columns: list[str]) -> sql.Composed:
    # CSV as `staging.write_accepted` writes it: NULL is an unquoted empty field.
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(table, identifiers(columns))


def _copy_new_rows(
    cur: Cursor, contract: Contract, columns: list[str], sources: Sequence[Source]
) -> int | None:
    """COPY the rows into the table; the row count, or None (and nothing written) when a
    key is already there."""
    cur.execute("SAVEPOINT copy_new_rows")
    try:
        table = sql.Identifier(SCHEMA, contract.table)
        copied = _copy_each(cur, as_text(_copy_command(table, columns), cur), sources)
    except UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT copy_new_rows")
        log.info("%s: a key of this batch is stored already: upserting", contract.dag_id)
        return None
    cur.execute("RELEASE SAVEPOINT copy_new_rows")
    return copied


def _stage_and_upsert(
    cur: Cursor, contract: Contract, columns: list[str], sources: Sequence[Source], run_id: str
) -> tuple[int, int]:
    cur.execute(
        sql.SQL("CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            identifiers(columns), sql.Identifier(SCHEMA, contract.table)
        )
    )
    _copy_each(cur, as_text(_copy_command(sql.Identifier("stage"), columns), cur), sources)
    # The row's data: what tells a changed row from a repeated one (not lineage, not
    # event_time_utc, which follows from event_time); its content: the data but the change
    # column, which a re-stamping portal moves without changing anything.
    data_columns = [c for c in stage_columns(contract) if c != contract.key]
    change = contract.change_column.name if contract.change_column is not None else None
    content = [c for c in data_columns if c != change] or data_columns
    history_columns = table_columns(contract)
    statement = render(
        "load/upsert.sql",
        table=contract.table,
        history=history_table(contract),
        key=contract.key,
        columns=identifiers(columns),
        history_columns=identifiers(history_columns),
        old_columns=identifiers(history_columns, "t"),
        assignments=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
            for c in columns
            if c != contract.key
        ),
        target_columns=identifiers(data_columns, "t"),
        excluded_columns=identifiers(data_columns, "excluded"),
        target_content=identifiers(content, "t"),
        excluded_content=identifiers(content, "excluded"),
        staged_content=identifiers(content, "s"),
        not_older=_not_older(contract, "excluded"),
        staged_not_older=_not_older(contract, "s"),
    )
    cur.execute(statement, {"run_id": run_id})
    inserted, updated, replaced = cur.fetchone()
    log.info("%s: %d replaced version(s) kept in the history", contract.dag_id, replaced)
    return int(inserted), int(updated)


def _not_older(contract: Contract, incoming: str) -> sql.Composable:
    """The incoming row is not an older version of the stored one (by the change column)."""
    if contract.change_column is None:
        return sql.SQL("TRUE")
    return sql.SQL("(t.{0} IS NULL OR {1}.{0} IS NULL OR {1}.{0} >= t.{0})").format(
        sql.Identifier(contract.change_column.name), sql.Identifier(incoming)
    )


def load_batch(
    conn: Connection, contract: Contract, manifest: RunManifest, root: StorageRoot
) -> LoadResult:
    """Load one validated run's objects in one transaction (the caller's connection commits).

    The audit times the whole run, from the moment its extract began.
    """
    began = time.time()
    validated = manifest.require_validated()
    extracted = manifest.extracted
    window, run_id = manifest.window, manifest.run_id
    with conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
        cur.execute(
            # The key predates the package layout: loads of older workers take the same lock.
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"citypulse.load.{contract.table}",),
        )
        inserted, updated = upsert_accepted(
            cur,
            contract,
            [root.object(part.key) for part in validated.accepted],
            validated.key_range,
            run_id=run_id,
        )
        accepted = validated.accepted_rows
        rejected = quarantine_rejects(
            cur, contract, [root.object(part.key) for part in validated.rejects], run_id, window
        )
        if extracted.rows != accepted + rejected or inserted + updated > accepted:
            raise RuntimeError(
                f"{contract.dag_id}: counts do not add up: extracted {extracted.rows} != "
                f"accepted {accepted} + rejected {rejected} (inserted {inserted}, updated "
                f"{updated})"
            )
        if extracted.portal_rows != extracted.rows:
            raise RuntimeError(
                f"{contract.dag_id}: the portal counted {extracted.portal_rows} records, "
                f"{extracted.rows} were extracted"
            )
        watermark = extracted.watermark if manifest.incremental else None
        if watermark is not None and contract.change_column is not None:
            cur.execute(
                render("load/watermark.sql"),
                {
                    "dag_id": contract.dag_id,
                    "change_column": contract.change_column.wire_name,
                    "value": watermark,
                    "run_id": run_id,
                },
            )
        seconds = time.time() - min(manifest.started, began)
        cur.execute(
            render("load/audit.sql"),
            {
                "dag_id": contract.dag_id,
                "run_id": run_id,
                "window_start": window.start,
                "window_end": window.end,
                "timezone": window.timezone,
                "extracted": extracted.rows,
                "loaded": accepted,
                "rejected": rejected,
                "inserted": inserted,
                "updated": updated,
                "unchanged": accepted - inserted - updated,
                "seconds": round(seconds, 3),
                "validation": Json(validated.report.to_json()) if validated.report else None,
                "window_rows": extracted.window_rows,
                "portal_rows": extracted.portal_rows,
                "change_rows": extracted.change_rows,
                "watermark": watermark,
            },
        )
        audit_id = int(cur.fetchone()[0])
    result = LoadResult(
        extracted.rows,
        accepted,
        rejected,
        inserted,
        updated,
        accepted - inserted - updated,
        round(seconds, 3),
        audit_id,
    )
    log.info("%s: %s", contract.dag_id, result)
    return result


def read_watermark(cur: Cursor, contract: Contract) -> str | None:
    """The dataset's watermark, if incremental capture has one for its change column."""
    if contract.change_column is None:
        return None
    cur.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.watermarks",))
    if cur.fetchone()[0] is None:
        return None
    cur.execute(
        sql.SQL("SELECT value FROM {} WHERE dag_id = %s AND change_column = %s").format(
            sql.Identifier(SCHEMA, "watermarks")
        ),
        (contract.dag_id, contract.change_column.wire_name),
    )
    row = cur.fetchone()
    return str(row[0]) if row else None
