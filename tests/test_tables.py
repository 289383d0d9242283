"""The warehouse's tables (`citypulse.warehouse.tables`): created once, extended with what a newer
contract adds, and never locked for nothing: a load must not wait for an analyst's query."""

from __future__ import annotations

from typing import Any

import psycopg2

from conftest import query
from helpers import by_id


def test_ensuring_an_up_to_date_table_does_not_wait_for_its_readers(
    fresh_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    contract = by_id(contracts, "chicago_crime")
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
    reader = psycopg2.connect(fresh_warehouse)
    try:
        with reader.cursor() as cur:  # an analyst's long query, still open
            cur.execute("SELECT count(*) FROM citypulse.chicago_crime")
            cur.execute("SELECT count(*) FROM citypulse.chicago_crime_history")
        with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
            cur.execute("SET lock_timeout = '1s'")
            ensure_schema(cur)
            ensure_table(cur, contract)  # nothing to add: no ALTER, no lock to wait for
    finally:
        reader.close()
    columns = query(
        fresh_warehouse,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'citypulse' "
        "AND table_name = 'chicago_crime' AND column_name = 'cp_changed_at' "
        "AND column_default = 'now()'",
    )
    assert columns == [(1,)]
