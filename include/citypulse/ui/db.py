"""Reading the warehouse for the UI: read-only transactions and the SQL of the package's
`sql/ui/`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from citypulse.settings import SCHEMA
from citypulse.warehouse.types import Cursor


@contextmanager
def reading() -> Iterator[Cursor]:
    """A cursor in a read-only transaction: the UI never writes the warehouse."""
    from citypulse.warehouse.connection import connect

    with connect() as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        yield cur


def exists(cur: Cursor, relation: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{relation}",))
    return bool(cur.fetchone()[0])


def fetch(
    cur: Cursor, relative: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    from citypulse.warehouse.sqlfiles import render

    cur.execute(render(relative), params or {})
    return list(cur.fetchall())
