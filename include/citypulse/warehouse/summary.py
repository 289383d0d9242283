"""A dataset's per-day summaries, kept by triggers on its typed table (SQL in
`sql/summary/`): `<table>_days` (live rows, newest change and newest event per local day)
and `<table>_hex_days` (live rows per local day and H3 cell). Readers that would count the
whole table read them instead: the partition audit's warehouse side, the health page, and
`hex_daily_counts` (the map and the model's observed counts).

Every write to the table (a load's COPY or upsert, a repair's soft deletes, an analyst's
edit) moves them in its own transaction, from the rows it wrote alone. A warehouse made
before them gets them on its next `ensure_table`: created with their triggers and counted
once from the table, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

from citypulse.contracts.contract import Contract
from citypulse.settings import SCHEMA
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.types import Cursor

WRITES = ("insert", "update", "delete", "truncate")


@dataclass(frozen=True)
class Summaries:
    """The names of one dataset's summary tables, trigger functions and triggers."""

    table: str

    @property
    def days(self) -> str:
        return f"{self.table}_days"

    @property
    def hex_days(self) -> str:
        return f"{self.table}_hex_days"

    def function(self, write: str) -> str:
        return f"{self.table}_summaries_on_{write}"

    def trigger(self, write: str) -> str:
        return f"{self.table}_summaries_{write}"


def summaries(contract: Contract) -> Summaries:
    return Summaries(contract.table)


def serves_audit(contract: Contract) -> bool:
    """Whether `<table>_days` counts the days the partition audit compares: those of the
    contract's event column, which is `event_time` itself unless a time-of-day column is
    added to it or the column carries a zone (its day would then be UTC's)."""
    return contract.event_time_of_day is None and contract.event_column.type in {
        "timestamp",
        "date",
    }


def _parts(contract: Contract) -> dict[str, Any]:
    """The identifiers and literals the summary SQL files name (every one composed)."""
    names = summaries(contract)
    change = contract.change_column
    parts: dict[str, Any] = {
        "table": sql.Identifier(contract.table),
        "table_name": sql.Literal(contract.table),
        "days": sql.Identifier(names.days),
        "hex_days": sql.Identifier(names.hex_days),
        "change_type": sql.SQL(change.type if change is not None else "text"),
        "change": sql.Identifier(change.name) if change else sql.SQL("NULL::text"),
        "old_change": sql.Identifier("o", change.name) if change else sql.SQL("NULL::text"),
        "row_change": sql.Identifier("t", change.name) if change else sql.SQL("NULL::text"),
    }
    for write in WRITES:
        parts[f"{write}_function"] = sql.Identifier(names.function(write))
        parts[f"{write}_trigger"] = sql.Identifier(names.trigger(write))
    return parts


def _triggers_present(cur: Cursor, contract: Contract) -> bool:
    names = summaries(contract)
    cur.execute(
        "SELECT count(*) FROM pg_trigger "
        "WHERE tgrelid = to_regclass(%s) AND tgname = ANY(%s) AND NOT tgisinternal",
        (f'"{SCHEMA}"."{contract.table}"', [names.trigger(w) for w in WRITES]),
    )
    return int(cur.fetchone()[0]) == len(WRITES)


def ensure_summaries(cur: Cursor, contract: Contract) -> bool:
    """The dataset's summaries and their triggers (the typed table exists); when they were
    missing, counted from the table. Whether they were made now. The caller holds the DDL
    lock."""
    if _triggers_present(cur, contract):
        return False
    parts = _parts(contract)
    cur.execute(render("summary/tables.sql", **parts))
    cur.execute(
        sql.SQL("TRUNCATE {}, {}").format(
            sql.Identifier(SCHEMA, summaries(contract).days),
            sql.Identifier(SCHEMA, summaries(contract).hex_days),
        )
    )
    cur.execute(render("summary/functions.sql", **parts))
    for write in WRITES:
        cur.execute(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                parts[f"{write}_trigger"], sql.Identifier(SCHEMA, contract.table)
            )
        )
    cur.execute(render("summary/triggers.sql", **parts))
    cur.execute(render("summary/backfill.sql", **parts))
    return True
