"""A dataset's view metadata as the portal describes it (`GET /api/views/<id>.json`).

Typed and frozen, read from the portal's JSON by `ViewMetadata.from_json`, which raises
ValueError for an answer that is not view metadata (the client retries it as a bad
response). Plain Python: importable anywhere, DAG files included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Socrata's `dataTypeName` of its system columns (`:id`, `:created_at`, ...).
SYSTEM_TYPE = "meta_data"
# Socrata's `dataTypeName` -> the family of contract column types its values are
# (`citypulse.contracts.column_types`), the one table drift and `contract init` read. Portals
# name one kind in several ways (SODA 2 and SODA3 era names); "coordinates" is a point or a
# location, which only feeds a contract's latitude/longitude. Anything else is text.
COORDINATES = "coordinates"
FAMILIES: dict[str, str] = {
    "text": "text",
    "number": "number",
    "double": "number",
    "money": "number",
    "percent": "number",
    "calendar_date": "timestamp",  # floating: the city's wall time
    "floating_timestamp": "timestamp",
    "date": "timestamp",
    "fixed_timestamp": "timestamp",  # an instant, with its offset
    "checkbox": "boolean",
    "point": COORDINATES,
    "location": COORDINATES,
}


@dataclass(frozen=True)
class ColumnStats:
    """A column's `cachedContents`: the portal's own summary of its values (None: not sent)."""

    non_null: int | None
    null: int | None
    cardinality: int | None
    smallest: str | None
    largest: str | None
    top: tuple[tuple[Any, int], ...]  # (item, count), most frequent first

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ColumnStats:
        top = raw.get("top") or []
        if not isinstance(top, list) or not all(isinstance(t, dict) for t in top):
            raise ValueError("cachedContents.top is not a list of {item, count}")
        return cls(
            non_null=_count(raw.get("non_null", raw.get("not_null")), "non_null"),
            null=_count(raw.get("null"), "null"),
            cardinality=_count(raw.get("cardinality"), "cardinality"),
            smallest=_text(raw.get("smallest")),
            largest=_text(raw.get("largest")),
            top=tuple((t.get("item"), _count(t.get("count"), "top.count") or 0) for t in top),
        )


@dataclass(frozen=True)
class ViewColumn:
    """One column: its API field name, display name, Socrata type and position."""

    field_name: str
    name: str
    data_type: str  # Socrata's dataTypeName: text, number, calendar_date, checkbox, point, ...
    position: int
    column_id: int | None
    stats: ColumnStats | None

    @property
    def family(self) -> str:
        """The family of contract types its values are (`FAMILIES`; text if not listed)."""
        return FAMILIES.get(self.data_type, "text")

    @property
    def system(self) -> bool:
        return self.data_type == SYSTEM_TYPE or self.field_name.startswith(":")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ViewColumn:
        field_name = raw.get("fieldName")
        if not isinstance(field_name, str) or not field_name:
            raise ValueError(f"a column without a fieldName: {dict(raw)!r}"[:200])
        cached = raw.get("cachedContents")
        if cached is not None and not isinstance(cached, dict):
            raise ValueError(f"column {field_name}: cachedContents is not an object")
        position = raw.get("position", 0)
        column_id = raw.get("id")
        return cls(
            field_name=field_name,
            name=str(raw.get("name") or field_name),
            data_type=str(raw.get("dataTypeName") or "text"),
            position=position if _is_int(position) else 0,
            column_id=column_id if _is_int(column_id) else None,
            stats=ColumnStats.from_json(cached) if cached is not None else None,
        )


@dataclass(frozen=True)
class ViewMetadata:
    """What the portal says about one dataset: when its rows last changed (UTC), its columns
    and its row identifier (the field name, when the publisher set one)."""

    dataset_id: str
    name: str
    rows_updated_at: datetime | None
    view_last_modified: datetime | None
    row_identifier: str | None
    columns: tuple[ViewColumn, ...]

    def column(self, field_name: str) -> ViewColumn | None:
        return next((c for c in self.columns if c.field_name == field_name), None)

    @property
    def data_columns(self) -> tuple[ViewColumn, ...]:
        """The columns but the system ones, in position order."""
        return tuple(sorted((c for c in self.columns if not c.system), key=lambda c: c.position))

    @classmethod
    def from_json(cls, raw: Any) -> ViewMetadata:
        """Read the portal's answer; ValueError when it is not view metadata."""
        if not isinstance(raw, dict):
            raise ValueError(f"view metadata is a JSON object, not {type(raw).__name__}")
        columns_raw = raw.get("columns", [])
        if not isinstance(columns_raw, list) or not all(isinstance(c, dict) for c in columns_raw):
            raise ValueError("view metadata `columns` is not a list of objects")
        if not isinstance(raw.get("id"), str):
            raise ValueError("view metadata without an `id`")
        columns = tuple(ViewColumn.from_json(c) for c in columns_raw)
        identifier = raw.get("rowIdentifierColumnId")
        row_identifier = next(
            (c.field_name for c in columns if identifier is not None and c.column_id == identifier),
            None,
        )
        return cls(
            dataset_id=raw["id"],
            name=str(raw.get("name") or raw["id"]),
            rows_updated_at=_epoch(raw.get("rowsUpdatedAt"), "rowsUpdatedAt"),
            view_last_modified=_epoch(raw.get("viewLastModified"), "viewLastModified"),
            row_identifier=row_identifier,
            columns=columns,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _epoch(value: Any, name: str) -> datetime | None:
    """Epoch seconds (a number, or its digits as a string) as a UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if not _is_int(value) or not 0 <= value < 253_402_300_800:  # before year 10000
        raise ValueError(f"{name} is not epoch seconds: {value!r}"[:200])
    return datetime.fromtimestamp(value, tz=UTC)


def _count(value: Any, name: str) -> int | None:
    """A count the portal sends as a string of digits (or a number)."""
    if value is None:
        return None
    text = str(value)
    if (_is_int(value) and value >= 0) or (text.isascii() and text.isdigit() and len(text) <= 18):
        return int(text)
    raise ValueError(f"cachedContents.{name} is not a count: {value!r}"[:200])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
