"""The DB-API surface CityPulse uses, as Protocols: what a function taking `cur: Cursor` or
`conn: Connection` may call, and nothing more.

psycopg2's cursors and connections satisfy them structurally (`_conforms` below has mypy
check it: requirements-dev pins psycopg2's stubs, `types-psycopg2`). This module imports
nothing heavy: annotations name psycopg2 only for type checkers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeAlias

if TYPE_CHECKING:
    import psycopg2.extensions
    from psycopg2.sql import Composable

# A statement: SQL text or psycopg2's composed SQL (`sqlfiles.render`).
Query: TypeAlias = "str | bytes | Composable"
# Its parameters: positional (`%s`) or named (`%(name)s`).
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None
Row: TypeAlias = tuple[Any, ...]


class Column(Protocol):
    """One column of a result (`Cursor.description`)."""

    @property
    def name(self) -> str: ...


class Cursor(Protocol):
    """A DB-API cursor with psycopg2's `copy_expert` (COPY ... FROM STDIN)."""

    # The columns of the last result; None after a statement that returns no rows.
    @property
    def description(self) -> Sequence[Column] | None: ...

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: Query, vars: Params = None, /) -> None: ...

    # A row, or None past the last one. Any rather than `Row | None`: most callers read the
    # one row a query always returns (`cur.fetchone()[0]`).
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Row]: ...

    # COPY ... FROM STDIN reads `file` with read(size) only (copystream.PartStream has no
    # readline, which psycopg2's stubs ask for): Any, not a Protocol psycopg2's would refuse.
    def copy_expert(self, sql: Query, file: Any, size: int = ...) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None: ...


class Connection(Protocol):
    """A DB-API connection: cursors, the transaction's end, autocommit for DDL such as
    CREATE DATABASE."""

    @property
    def autocommit(self) -> bool: ...

    @autocommit.setter
    def autocommit(self, value: bool) -> None: ...

    def cursor(self) -> Cursor: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


if TYPE_CHECKING:

    def _conforms(
        conn: psycopg2.extensions.connection, cur: psycopg2.extensions.cursor
    ) -> tuple[Connection, Cursor]:
        """psycopg2's objects are a Connection and a Cursor (checked, never called)."""
        return conn, cur
