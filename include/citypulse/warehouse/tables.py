"""The warehouse's tables: each dataset's typed table and its change history, and the shared
tables (audit, rejects, watermarks, partition audits). Whichever city gets there first
creates them, so DDL is serialised under one advisory lock; every statement is safe to run
again and adds what a newer contract or CityPulse added since.
"""

from __future__ import annotations

from psycopg2 import sql

from citypulse.contracts.contract import Contract
from citypulse.settings import SCHEMA
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.summary import ensure_summaries
from citypulse.warehouse.types import Cursor

DDL_LOCK = 7_340_001
# Every typed table's columns besides the contract's, with their types.
STANDARD_COLUMNS = (
    ("event_time", "timestamp NOT NULL"),
    ("event_time_utc", "timestamptz"),
    ("h3_r8", "text"),
    ("h3_r7", "text"),
    ("cp_run_id", "text NOT NULL"),
    ("cp_loaded_at", "timestamptz NOT NULL DEFAULT now()"),
    ("cp_deleted_at", "timestamptz"),
)
# When the row's content last changed (not a re-stamp of its change column); NULL on rows
# loaded before CityPulse kept it (their cp_loaded_at stands in).
CHANGED_AT = "cp_changed_at"
# A history row's own columns: the span its version was current, and the run that ended it.
HISTORY_COLUMNS = (
    ("valid_from", "timestamptz NOT NULL"),
    ("valid_to", "timestamptz NOT NULL"),
    ("replaced_by_run", "text NOT NULL"),
)


def history_table(contract: Contract) -> str:
    return f"{contract.table}_history"


def table_columns(contract: Contract) -> list[str]:
    """A typed table's columns, in order: the contract's, the standard ones, CHANGED_AT."""
    return (
        [c.name for c in contract.columns] + [name for name, _ in STANDARD_COLUMNS] + [CHANGED_AT]
    )


def ensure_schema(cur: Cursor) -> None:
    """The schema and the shared tables (audit, rejects, watermarks, partition audits)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
    cur.execute(render("schema/10_schema.sql"))


def ensure_table(cur: Cursor, contract: Contract) -> None:
    """The dataset's typed table and its history, with the columns a newer contract added
    since they were created."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
    table = sql.Identifier(SCHEMA, contract.table)
    history = sql.Identifier(SCHEMA, history_table(contract))
    typed = [(c.name, c.type) for c in contract.columns]
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            table, _definitions([*typed, *STANDARD_COLUMNS]), sql.Identifier(contract.key)
        )
    )
    # Versions replaced by an update: no key constraint (many versions of one key).
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
            history, _definitions([*typed, *_nullable(STANDARD_COLUMNS), *HISTORY_COLUMNS])
        )
    )
    # Only what is missing: an ALTER TABLE, even one that changes nothing, takes a lock that
    # waits for (and then blocks) every analyst's query on the table.
    tables = (
        (contract.table, STANDARD_COLUMNS),
        (history_table(contract), _nullable(STANDARD_COLUMNS)),
    )
    for name, extra in tables:
        present = _columns(cur, name)
        target = sql.Identifier(SCHEMA, name)
        for column, kind in [*typed, *extra, (CHANGED_AT, "timestamptz")]:
            if column not in present:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        target, sql.Identifier(column), sql.SQL(kind)
                    )
                )
        if name == contract.table and present.get(CHANGED_AT) is None:
            # Rows loaded from now on say when their content changed; older rows stay NULL.
            cur.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT now()").format(
                    target, sql.Identifier(CHANGED_AT)
                )
            )
    for name, target, expression in (
        (f"{contract.table}_event_time_idx", table, sql.SQL("event_time")),
        (f"{contract.table}_h3_r7_idx", table, sql.SQL("h3_r7, event_time")),
        (
            f"{history_table(contract)}_key_idx",
            history,
            sql.SQL("{}, valid_to").format(sql.Identifier(contract.key)),
        ),
        (f"{history_table(contract)}_valid_to_idx", history, sql.SQL("valid_to")),
    ):
        cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(name), target, expression
            )
        )
    ensure_summaries(cur, contract)


def _columns(cur: Cursor, table: str) -> dict[str, str | None]:
    """The table's columns and their defaults."""
    cur.execute(
        "SELECT column_name, column_default FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (SCHEMA, table),
    )
    return dict(cur.fetchall())


def _definitions(columns: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns
    )


def _nullable(columns: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The columns without NOT NULL or defaults: a history row copies what the row held."""
    return tuple((name, kind.split()[0]) for name, kind in columns)
