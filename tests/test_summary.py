"""The per-day summaries (`citypulse.warehouse.summary`): what the audit, the health page and
`hex_daily_counts` read instead of the table stays equal to counting the table, after every
kind of write: loads, reloads, edits (a moved day, a moved hexagon, a newer change), soft
deletes by a repair and restores, rejects opened and resolved, hard deletes, TRUNCATE; and
a warehouse made by the previous CityPulse (the commit before them, from git history) gets
them counted from its rows, every answer the same as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, query
from helpers import by_id

FIRST = date(2025, 3, 3)
DAYS = 4
PER_DAY = 40
CITIES = ("nyc_311", "chicago_crime")

# The answers readers got before the summaries, straight from the tables.
OLD_HEX = (
    "SELECT city, h3_r8, h3_r7, event_time_local::date, count(*) FROM citypulse.incidents "
    "WHERE h3_r8 IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
)
NEW_HEX = (
    "SELECT city, h3_r8, h3_r7, local_day, incidents FROM citypulse.hex_daily_counts "
    "ORDER BY 1, 2, 3, 4"
)
OLD_NEWEST = (
    "SELECT h.city, n.newest, n.rows FROM citypulse.pipeline_health AS h LEFT JOIN ("
    "SELECT city, max(event_time_utc) AS newest, count(*) AS rows FROM citypulse.city_records "
    "GROUP BY city) AS n USING (city) ORDER BY 1"
)
NEW_NEWEST = (
    "SELECT city, newest_event_utc, rows_in_table FROM citypulse.pipeline_health ORDER BY 1"
)


def direct_days(dsn: str, contract: Any) -> list[tuple[Any, ...]]:
    change = contract.change_column.name
    return query(
        dsn,
        f"SELECT event_time::date, count(*), max({change}), max(event_time_utc) "
        f"FROM citypulse.{contract.table} WHERE cp_deleted_at IS NULL GROUP BY 1 ORDER BY 1",
    )


def summary_days(dsn: str, contract: Any) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT day, rows, changed, newest_event_utc "
        f"FROM citypulse.{contract.table}_days WHERE rows > 0 ORDER BY 1",
    )


def direct_hex(dsn: str, contract: Any) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        f"SELECT event_time::date, h3_r8, h3_r7, count(*) FROM citypulse.{contract.table} "
        "WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )


def summary_hex(dsn: str, contract: Any) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        f"SELECT day, h3_r8, h3_r7, incidents FROM citypulse.{contract.table}_hex_days "
        "WHERE incidents > 0 ORDER BY 1, 2, 3",
    )


def audit_days(dsn: str, contract: Any, scan: bool, old_sql: Path | None = None) -> dict[date, Any]:
    """The audit's warehouse side, from the summary or (scan) counted from the table; with
    `old_sql`, by that tree's `reconcile/warehouse_days.sql` (the one before the summaries)."""
    from psycopg2 import sql

    from citypulse.pipeline import reconcile
    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.sqlfiles import identifier_or_null, render

    with connect(dsn) as conn, conn.cursor() as cur:
        if not scan:
            return reconcile.warehouse_days(cur, contract)
        cur.execute(
            render(
                "reconcile/warehouse_days.sql" if old_sql else "reconcile/warehouse_days_scan.sql",
                **({"directory": old_sql} if old_sql else {}),
                table=contract.table,
                key=contract.key,
                key_type=sql.SQL(contract.key_column.type),
                event=contract.event_time,
                change=identifier_or_null(contract.change_column.name),
            ),
            {"dag_id": contract.dag_id, "first": None, "last": None},
        )
        return {
            day: reconcile.DayCount(int(n), reconcile.canonical(changed))
            for day, n, changed in cur.fetchall()
        }


def assert_summaries_hold(dsn: str, contracts: list[Any]) -> None:
    for contract in contracts:
        assert summary_days(dsn, contract) == direct_days(dsn, contract), contract.dag_id
        assert summary_hex(dsn, contract) == direct_hex(dsn, contract), contract.dag_id
        assert audit_days(dsn, contract, scan=False) == audit_days(dsn, contract, scan=True)
    assert query(dsn, NEW_HEX) == query(dsn, OLD_HEX)
    assert query(dsn, NEW_NEWEST) == query(dsn, OLD_NEWEST)


def typed(contract: Any, records: list[dict[str, Any]]) -> Any:
    from citypulse.pipeline.validate.typing_rules import type_records

    batch = type_records(contract, records)
    return batch.frame[~batch.rejected_mask]


def load(dsn: str, contract: Any, records: list[dict[str, Any]], run_id: str) -> None:
    """Records of the days FIRST .. FIRST + DAYS (plus one either side) as one load."""
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect

    window = window_for_dates(
        (FIRST - timedelta(days=1)).isoformat(),
        (FIRST + timedelta(days=DAYS)).isoformat(),
        contract.timezone,
    )
    with tempfile.TemporaryDirectory() as folder, connect(dsn) as conn:
        root = StorageRoot(Path(folder).as_uri())
        load_typed_rows(conn, contract, typed(contract, records), run_id, window, root)


def generated(contract: Any, seed: int) -> list[dict[str, Any]]:
    from citypulse_dev.sample_history import well_formed_records

    records = well_formed_records(
        contract, FIRST, FIRST + timedelta(days=DAYS - 1), seed=seed, records_per_day=PER_DAY
    )
    key = contract.key_column.wire_name
    return list({r[key]: r for r in records}.values())  # each key once per load


def build(dsn: str, contracts: list[Any]) -> None:
    from citypulse.pipeline.views import build_views
    from citypulse.warehouse.connection import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        build_views(cur, contracts[0], contracts)


def execute(dsn: str, statement: Any, params: Any = None) -> None:
    from citypulse.warehouse.connection import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)


def edited(contract: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every 5th record with a new category, every 7th a day later, every 11th elsewhere in
    the city (another hexagon), every 13th with a newer change."""
    event = contract.event_column.wire_name
    category = contract.column(contract.incidents.category).wire_name
    change = contract.change_column.wire_name
    out = []
    for i, record in enumerate(records):
        record = dict(record)
        if i % 5 == 0:
            record[category] = "EDITED"
        if i % 7 == 0:
            moved = date.fromisoformat(record[event][:10]) + timedelta(days=1)
            record[event] = moved.isoformat() + record[event][10:]
        if i % 11 == 0 and contract.latitude and record.get(contract.latitude):
            record[contract.latitude] = str(float(record[contract.latitude]) + 0.02)
        if i % 13 == 0:
            record[change] = "2030-01-01T00:00:00.000"
        out.append(record)
    return out


@pytest.mark.integration
def test_every_write_keeps_the_summaries_equal_to_the_table(
    fresh_warehouse: str, contracts: list[Any]
) -> None:
    from psycopg2 import sql

    from citypulse.warehouse.sqlfiles import render

    dsn = fresh_warehouse
    chosen = [by_id(contracts, c) for c in CITIES]
    build(dsn, contracts)
    assert_summaries_hold(dsn, contracts)  # empty
    first = {c.dag_id: generated(c, seed=21) for c in chosen}
    for contract in chosen:
        load(dsn, contract, first[contract.dag_id], "first_load")
    assert_summaries_hold(dsn, contracts)
    for contract in chosen:  # a rerun of the same window: nothing changes
        load(dsn, contract, first[contract.dag_id], "rerun")
        load(dsn, contract, edited(contract, first[contract.dag_id]), "edits")
    assert_summaries_hold(dsn, contracts)

    nyc = chosen[0]
    day = FIRST + timedelta(days=1)
    keys = query(
        dsn,
        f"SELECT {nyc.key}::text FROM citypulse.{nyc.table} WHERE event_time::date = %s ORDER BY 1",
        (day,),
    )
    kept = [k for (k,) in keys[::2]]
    # A repair's soft delete: the day's rows whose keys the portal no longer holds.
    execute(
        dsn,
        render("reconcile/mark_deleted.sql", table=nyc.table, key=nyc.key, event=nyc.event_time),
        {"start": day, "end": day + timedelta(days=1), "keys": kept},
    )
    assert_summaries_hold(dsn, contracts)
    load(dsn, nyc, first[nyc.dag_id], "restore")  # the deleted rows come back
    assert_summaries_hold(dsn, contracts)

    # Open rejects (one whose key is not a number, one the warehouse holds, one it does not),
    # then resolved by a repair of their day.
    stored = keys[1][0]
    for record_key in ("not-a-number", stored, "991234567"):
        execute(
            dsn,
            "INSERT INTO citypulse.rejects (dag_id, record_key, reason, record, record_hash, "
            "first_run_id, window_start, window_end, event_day) VALUES "
            "(%s, %s, 'test', '{}', md5(%s), 'r', %s, %s, %s)",
            (nyc.dag_id, record_key, record_key, day, day + timedelta(days=1), day),
        )
    assert audit_days(dsn, nyc, scan=False)[day].rows == direct_days_of(dsn, nyc, day) + 2
    assert_summaries_hold(dsn, contracts)
    execute(
        dsn,
        render(
            "reconcile/resolve_rejects.sql",
            table=nyc.table,
            key=nyc.key,
            key_type=sql.SQL(nyc.key_column.type),
        ),
        {"dag_id": nyc.dag_id, "first": day, "last": day, "keys": [stored]},
    )
    resolutions = query(
        dsn, "SELECT record_key, resolution FROM citypulse.rejects ORDER BY record_key"
    )
    assert dict(resolutions) == {
        stored: "loaded after a correction",
        "991234567": "gone from the portal",
        "not-a-number": "gone from the portal",
    }
    assert_summaries_hold(dsn, contracts)

    # Writes no load makes: a hard delete of a day's newest rows, then TRUNCATE.
    execute(
        dsn,
        f"DELETE FROM citypulse.{nyc.table} WHERE event_time >= %s AND event_time < %s "
        "AND event_time_utc >= (SELECT max(event_time_utc) - interval '3 hours' "
        f"FROM citypulse.{nyc.table} WHERE event_time::date = %s)",
        (day, day + timedelta(days=1), day),
    )
    assert_summaries_hold(dsn, contracts)
    execute(dsn, f"TRUNCATE citypulse.{chosen[1].table}")
    assert_summaries_hold(dsn, contracts)
    assert summary_days(dsn, chosen[1]) == []


def direct_days_of(dsn: str, contract: Any, day: date) -> int:
    return int(
        query(
            dsn,
            f"SELECT count(*) FROM citypulse.{contract.table} "
            "WHERE cp_deleted_at IS NULL AND event_time::date = %s",
            (day,),
        )[0][0]
    )


def commit_before_summaries() -> str | None:
    """The newest commit before the one that added the summaries, from the project's own
    history (None where the history is not at hand, e.g. a shallow clone)."""
    added = subprocess.run(
        ["git", "log", "--format=%H", "--diff-filter=A", "--", "include/citypulse/sql/summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not added:
        return None
    parent = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"{added[-1]}^"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return parent.stdout.strip() or None


def tree_of(commit: str, folder: Path) -> Path:
    """`include/` as it stood at `commit` (the CityPulse before the summaries), unpacked."""
    archive = subprocess.run(
        ["git", "archive", commit, "include"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "include"


@pytest.mark.integration
def test_a_warehouse_made_before_the_summaries_gets_them_with_the_same_answers(
    fresh_warehouse: str, contracts: list[Any], tmp_path: Path
) -> None:
    """Story: an operator upgrades CityPulse over years of history. The first write (or
    views build) after the upgrade counts the summaries from the rows; the audit, the health
    page and the map answer exactly as before, and keep doing so as loads go on."""
    commit = commit_before_summaries()
    if commit is None:
        pytest.skip("the project's git history is not at hand to build the old warehouse with")
    old = tree_of(commit, tmp_path)
    dsn = fresh_warehouse
    history = subprocess.run(
        [
            sys.executable,
            *("-m", "citypulse_dev.sample_history"),
            *("--weeks=2", "--last=2025-03-16", "--records-per-day=30"),
        ],
        # The old code with its own contracts: today's may hold keys it did not know.
        env={
            **os.environ,
            "PYTHONPATH": str(old),
            "CITYPULSE_CONTRACTS_DIR": str(old / "contracts"),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert history.returncode == 0, history.stderr[-2000:]
    assert query(dsn, "SELECT to_regclass('citypulse.nyc_311_days')") == [(None,)]
    chosen = [by_id(contracts, c) for c in CITIES]
    before = {
        "hex": query(dsn, OLD_HEX),
        "newest": query(dsn, OLD_NEWEST),
        "audit": {c.dag_id: audit_days(dsn, c, True, old / "citypulse/sql") for c in chosen},
        "rejects": query(dsn, "SELECT count(*) FROM citypulse.rejects"),
    }
    assert before["rejects"][0][0] > 0 and before["hex"]

    build(dsn, contracts)  # the views task of the first run after the upgrade
    assert query(dsn, NEW_HEX) == before["hex"]
    assert query(dsn, NEW_NEWEST) == before["newest"]
    for contract in chosen:
        assert audit_days(dsn, contract, scan=False) == before["audit"][contract.dag_id]
    assert_summaries_hold(dsn, contracts)
    build(dsn, contracts)  # again: counted once, not twice
    assert_summaries_hold(dsn, contracts)
    for contract in chosen:
        load(dsn, contract, edited(contract, generated(contract, seed=7)), "after_upgrade")
    assert_summaries_hold(dsn, contracts)
