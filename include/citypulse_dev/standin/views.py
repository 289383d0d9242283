"""The stand-in's view metadata: what `GET /api/views/{id}.json` answers on a live portal,
derived from the records and column types the stand-in holds.

Shape as the live portals send it (a saved NYC Open Data answer, e.g. in
pip-pipo/json--user---data---city--api- city.js): epoch seconds for `rowsUpdatedAt` and
`viewLastModified`; system columns as `meta_data` with id -1 and the flag `hidden`; each data
column's `cachedContents` with every figure as a string (`non_null`, `null`, `cardinality`,
`smallest`, `largest`, `top` [{item, count}] of at most 20, plus `average`/`sum` for numbers).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

# The stand-in's SoQL types as the portals name them in `dataTypeName`.
DATA_TYPE_NAMES = {
    "number": "number",
    "text": "text",
    "timestamp": "calendar_date",
    "boolean": "checkbox",
    "location": "location",
}
SYSTEM_COLUMNS = (":id", ":created_at", ":updated_at")
TOP = 20


def column_id(dataset_id: str, field_name: str) -> int:
    """A stable, portal-looking numeric column id (live ones are 9-digit numbers)."""
    return 100_000_000 + zlib.crc32(f"{dataset_id}/{field_name}".encode()) % 900_000_000


def data_type_name(soql_type: str, sample: Any) -> str:
    """`dataTypeName` of a column of `soql_type`; a GeoJSON value makes a location a point."""
    if soql_type == "location" and isinstance(sample, dict) and "coordinates" in sample:
        return "point"
    return DATA_TYPE_NAMES.get(soql_type, "text")


def view_json(
    dataset_id: str,
    *,
    name: str,
    columns: Sequence[str],
    types: Mapping[str, str],
    records: Sequence[Mapping[str, Any]],
    key: str | None,
    created_at: int,
    rows_updated_at: int,
    view_last_modified: int,
) -> dict[str, Any]:
    """The view's metadata; `columns` in position order, `types` their SoQL types."""
    described = [
        {
            "id": -1,
            "name": field[1:],
            "dataTypeName": "meta_data",
            "fieldName": field,
            "position": 0,
            "renderTypeName": "meta_data",
            "format": {},
            "flags": ["hidden"],
        }
        for field in SYSTEM_COLUMNS
    ]
    for position, field in enumerate(columns, start=1):
        values = [r[field] for r in records if r.get(field) is not None]
        kind = data_type_name(types.get(field, "text"), values[0] if values else None)
        described.append(
            {
                "id": column_id(dataset_id, field),
                "name": field.replace("_", " ").title(),
                "dataTypeName": kind,
                "description": "",
                "fieldName": field,
                "position": position,
                "renderTypeName": kind,
                "cachedContents": cached_contents(kind, values, len(records)),
                "format": {},
            }
        )
    view: dict[str, Any] = {
        "id": dataset_id,
        "name": name,
        "assetType": "dataset",
        "description": "",
        "displayType": "table",
        "viewType": "tabular",
        "createdAt": created_at,
        "rowsUpdatedAt": rows_updated_at,
        "viewLastModified": view_last_modified,
        "columns": described,
    }
    if key is not None and key in columns:
        view["rowIdentifierColumnId"] = column_id(dataset_id, key)
    return view


def cached_contents(kind: str, values: Sequence[Any], rows: int) -> dict[str, Any]:
    """A column's summary as the portal caches it: every figure a string."""
    keys = [_item_key(v) for v in values]
    counts = Counter(keys)
    first = dict(zip(keys, values, strict=True))
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    summary: dict[str, Any] = {
        "non_null": str(len(values)),
        "not_null": str(len(values)),
        "null": str(rows - len(values)),
        "count": str(rows),
        "cardinality": str(len(counts)),
        "top": [{"item": first[k], "count": str(n)} for k, n in top],
    }
    if kind == "number":
        numbers = [(float(v), v) for v in values if _is_number(v)]
        if numbers:
            summary["smallest"] = min(numbers)[1]
            summary["largest"] = max(numbers)[1]
            total = sum(n for n, _ in numbers)
            summary["sum"] = _number_text(total)
            summary["average"] = _number_text(total / len(numbers))
    elif kind in ("text", "calendar_date") and values:
        texts = [str(v) for v in values]
        summary["smallest"], summary["largest"] = min(texts), max(texts)
    return summary


def _item_key(value: Any) -> str:
    return (
        json.dumps(value, sort_keys=True) if isinstance(value, dict | list | bool) else str(value)
    )


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def drifted_columns(
    view: Mapping[str, Any],
    *,
    drop: Sequence[str] = (),
    retype: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The view's `columns` as a publisher who dropped `drop` and changed the `dataTypeName`
    of `retype`'s fields would leave them: serve them with `SodaStandIn.lie_in_view(id,
    {"columns": ...})` (or `POST /_standin/datasets/<id>/view`). A column added at the portal
    needs no help: a record that carries a new field puts it in the view."""
    retype = retype or {}
    unknown = sorted((set(drop) | set(retype)) - {c["fieldName"] for c in view["columns"]})
    if unknown:
        raise KeyError(f"the view of {view.get('id')} has no column(s) {unknown}")
    return [
        {**column, "dataTypeName": retype[field], "renderTypeName": retype[field]}
        if field in retype
        else dict(column)
        for column in view["columns"]
        if (field := column["fieldName"]) not in drop
    ]
