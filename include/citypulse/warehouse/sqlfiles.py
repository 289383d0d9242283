"""SQL kept in `.sql` files (the package's `sql/`), with identifiers filled in by psycopg2's
`sql` module."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from psycopg2 import sql

from citypulse.settings import SCHEMA, SQL_DIR

if TYPE_CHECKING:
    from citypulse.warehouse.types import Cursor


@cache
def sql_text(relative: str, directory: Path = SQL_DIR) -> str:
    return (directory / relative).read_text(encoding="utf-8")


def render(relative: str, *, directory: Path = SQL_DIR, **parts: Any) -> sql.Composed:
    """A SQL file (under `directory`) with `{schema}` and every named part quoted as an
    identifier or composed."""
    values: dict[str, sql.Composable] = {"schema": sql.Identifier(SCHEMA)}
    for name, value in parts.items():
        values[name] = value if isinstance(value, sql.Composable) else sql.Identifier(value)
    return sql.SQL(sql_text(relative, directory)).format(**values)


def as_text(statement: sql.Composable, cur: Cursor) -> str:
    """The statement as text, quoted for `cur`'s connection (COPY and `execute_values` take
    text). psycopg2 types the argument as its own classes; any conforming cursor works."""
    return statement.as_string(cast(Any, cur))


def identifier_or_null(name: str | None) -> sql.Composable:
    """A column by name, or the literal NULL where a contract names none."""
    return sql.SQL("NULL") if name is None else sql.Identifier(name)


def identifiers(names: list[str], prefix: str | None = None) -> sql.Composed:
    """`a, b, c` or, with a prefix, `p.a, p.b, p.c`, each quoted."""
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)
