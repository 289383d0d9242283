"""Views: each city's from `include/citypulse/sql/views/<dag_id>/`, and the cross-city ones.

`city_records` unions every contract's table (key and event time), mapped or not, and
`city_record_days` every contract's per-day summary (live rows, newest event per local day:
warehouse/summary.py), which `pipeline_health` reads instead of counting the tables;
`incidents` unions the tables of the contracts with an `incidents:` mapping (the mapped
datasets the hotspot model reads) through that mapping; `hex_daily_counts` unions their
per-cell, per-day summaries (incidents per H3 cell and local day, kept by the loads);
`incident_versions` unions every version of every such record (its local day, cells and
the span it was current), so the hotspot model can read the warehouse as it was on a past
date; `pipeline_health` summarises the audit per city for
operators.
"""

from __future__ import annotations

import logging

from psycopg2 import sql

from citypulse.contracts.contract import Contract
from citypulse.settings import SCHEMA, SQL_DIR
from citypulse.warehouse.sqlfiles import identifiers, render, sql_text
from citypulse.warehouse.summary import summaries
from citypulse.warehouse.tables import (
    DDL_LOCK,
    ensure_schema,
    ensure_table,
    history_table,
    table_columns,
)
from citypulse.warehouse.types import Cursor

log = logging.getLogger(__name__)


def city_view_files(contract: Contract) -> list[str]:
    """The city's view files (relative to include/citypulse/sql), in name order."""
    folder = SQL_DIR / "views" / contract.dag_id
    return [f"views/{contract.dag_id}/{p.name}" for p in sorted(folder.glob("*.sql"))]


def _optional_column(column: str | None) -> sql.Composable:
    return sql.SQL("NULL") if column is None else sql.Identifier("t", column)


def _optional_text(column: str | None) -> sql.Composable:
    if column is None:
        return sql.SQL("NULL::text")
    return sql.SQL("t.{}::text").format(sql.Identifier(column))


def _union_view(name: str, branches: list[sql.Composed], none: str) -> sql.Composed:
    """CREATE OR REPLACE VIEW `name` as the union of `branches`; with none, the SQL file
    `none` (the same columns, no rows), so readers of the view never break."""
    body = sql.SQL("\nUNION ALL\n").join(branches) if branches else sql.SQL(sql_text(none))
    return sql.SQL("CREATE OR REPLACE VIEW {} AS\n{}").format(sql.Identifier(SCHEMA, name), body)


def _by_dag_id(contracts: list[Contract]) -> list[Contract]:
    return sorted(contracts, key=lambda c: c.dag_id)


def city_records_view(contracts: list[Contract]) -> sql.Composed:
    """CREATE OR REPLACE VIEW city_records: every contract's live records (key, event time)."""
    branches = [
        sql.SQL(sql_text("views/common/city_records_branch.sql")).format(
            schema=sql.Identifier(SCHEMA),
            table=sql.Identifier(c.table),
            city=sql.Literal(c.dag_id),
            key=sql.Identifier(c.key),
        )
        for c in _by_dag_id(contracts)
    ]
    return _union_view("city_records", branches, "views/common/city_records_none.sql")


def incidents_view(contracts: list[Contract]) -> sql.Composed:
    """CREATE OR REPLACE VIEW incidents: one branch per contract with an `incidents:`
    mapping (and so coordinates), in dag_id order."""
    branches = [
        sql.SQL(sql_text("views/common/incidents_branch.sql")).format(
            schema=sql.Identifier(SCHEMA),
            table=sql.Identifier(c.table),
            city=sql.Literal(c.dag_id),
            key=sql.Identifier(c.key),
            category=sql.Identifier(mapping.category),
            subcategory=_optional_text(mapping.subcategory),
            district=_optional_text(mapping.district),
            latitude=_optional_column(c.latitude),
            longitude=_optional_column(c.longitude),
        )
        for c in _by_dag_id(contracts)
        if (mapping := c.incidents) is not None
    ]
    return _union_view("incidents", branches, "views/common/incidents_none.sql")


def city_record_days_view(contracts: list[Contract]) -> sql.Composed:
    """CREATE OR REPLACE VIEW city_record_days: every contract's live rows and newest event
    per local day, from its `<table>_days` summary."""
    branches = [
        sql.SQL(sql_text("views/common/city_record_days_branch.sql")).format(
            schema=sql.Identifier(SCHEMA),
            days=sql.Identifier(summaries(c).days),
            city=sql.Literal(c.dag_id),
        )
        for c in _by_dag_id(contracts)
    ]
    return _union_view("city_record_days", branches, "views/common/city_record_days_none.sql")


def hex_daily_counts_view(contracts: list[Contract]) -> sql.Composed:
    """CREATE OR REPLACE VIEW hex_daily_counts: incidents per H3 cell and local day of each
    contract `incidents` reads, from its `<table>_hex_days` summary."""
    branches = [
        sql.SQL(sql_text("views/common/hex_daily_counts_branch.sql")).format(
            schema=sql.Identifier(SCHEMA),
            hex_days=sql.Identifier(summaries(c).hex_days),
            city=sql.Literal(c.dag_id),
        )
        for c in _by_dag_id(contracts)
        if c.incidents is not None
    ]
    return _union_view("hex_daily_counts", branches, "views/common/hex_daily_counts_none.sql")


def incident_versions_view(contracts: list[Contract]) -> sql.Composed:
    """CREATE OR REPLACE VIEW incident_versions: the `<table>_versions` of each contract
    `incidents` reads, unioned."""
    branches = [
        sql.SQL(sql_text("views/common/incident_versions_branch.sql")).format(
            schema=sql.Identifier(SCHEMA),
            versions=sql.Identifier(f"{c.table}_versions"),
            city=sql.Literal(c.dag_id),
            key=sql.Identifier(c.key),
        )
        for c in _by_dag_id(contracts)
        if c.modelled
    ]
    return _union_view("incident_versions", branches, "views/common/incident_versions_none.sql")


def build_views(cur: Cursor, contract: Contract, contracts: list[Contract]) -> list[str]:
    """(Re)create the city's views and the cross-city views; returns the views built."""
    ensure_schema(cur)
    for other in contracts:
        ensure_table(cur, other)
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
    built = []
    for relative in city_view_files(contract):
        cur.execute(render(relative, table=contract.table))
        built.append(relative.rsplit("/", 1)[1].removesuffix(".sql"))
    built += history_views(cur, contract)
    for other in contracts:  # every city's versions view, for the union below
        if other.dag_id != contract.dag_id:
            history_views(cur, other)
    cur.execute(city_records_view(contracts))
    cur.execute(incidents_view(contracts))
    cur.execute(incident_versions_view(contracts))
    cur.execute(hex_daily_counts_view(contracts))
    cur.execute(city_record_days_view(contracts))
    cur.execute(render("views/common/pipeline_health.sql"))
    built += [
        "city_records",
        "city_record_days",
        "incidents",
        "incident_versions",
        "hex_daily_counts",
        "pipeline_health",
    ]
    grant_reader(cur)
    return built


def build_city_views(
    contract: Contract, contracts: list[Contract], dsn: str | None = None
) -> list[str]:
    """The `views` task: the views (build_views), then the city's stale dashboard charts
    computed and cached (warehouse/chart_cache.py) in a transaction of their own, since they
    aggregate the whole table and build_views holds the DDL lock every load waits for."""
    from citypulse.warehouse import chart_cache
    from citypulse.warehouse.connection import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        built = build_views(cur, contract, contracts)
    with connect(dsn) as conn, conn.cursor() as cur:
        charted = chart_cache.refresh(cur, contract)
    if charted:
        log.info("%s: charts of %s computed and cached", contract.dag_id, ", ".join(charted))
    return built


def history_views(cur: Cursor, contract: Contract) -> list[str]:
    """`<table>_versions` (every version of every row, with when it was current) and
    `<table>_changes` (each content change: when, by which run, before and after)."""
    columns = table_columns(contract)
    lineage = sql.SQL("ARRAY[{}]::text[]").format(
        sql.SQL(", ").join(
            sql.Literal(c)
            for c in (
                "cp_run_id",
                "cp_loaded_at",
                "cp_changed_at",
                "cp_deleted_at",
                "valid_from",
                "valid_to",
                "replaced_by_run",
            )
        )
    )
    versions, changes = f"{contract.table}_versions", f"{contract.table}_changes"
    cur.execute(
        render(
            "views/common/versions.sql",
            versions=versions,
            table=contract.table,
            history=history_table(contract),
            columns=identifiers(columns, "h"),
            current_columns=identifiers(columns, "t"),
        )
    )
    cur.execute(
        render(
            "views/common/changes.sql",
            changes=changes,
            table=contract.table,
            history=history_table(contract),
            key=contract.key,
            lineage=lineage,
        )
    )
    return [versions, changes]


READER_ROLE = "citypulse_reader"


def grant_reader(cur: Cursor) -> None:
    """Let `citypulse_reader` select every view of the schema and nothing else.

    Creating the role needs CREATEROLE; without it (a locked-down warehouse user) the grants
    are left to the DBA and a warning says so.
    """
    cur.execute("SAVEPOINT reader_role")
    try:
        cur.execute(render("views/common/reader_role.sql"))
    except Exception as exc:  # psycopg2.errors.InsufficientPrivilege, mostly
        cur.execute("ROLLBACK TO SAVEPOINT reader_role")
        log.warning("could not set up role %s (%s); ask a DBA to", READER_ROLE, exc)
        return
    cur.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = %s",
        (SCHEMA,),
    )
    for (view,) in cur.fetchall():
        cur.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(SCHEMA, view), sql.Identifier(READER_ROLE)
            )
        )
