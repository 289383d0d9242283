"""Turn wire records (every value a string) into typed columns, noting what fails to parse.

Vectorised with pandas: a run's records are typed column by column, never row by row; the
columns are gathered from the records in one pass. Imported only inside tasks (it pulls in
pandas and h3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from citypulse.contracts import Column, Contract
from citypulse.staging import gc_paused

# Standard columns every typed table has besides the dataset's own (see RESERVED_COLUMNS).
DERIVED_COLUMNS = ("event_time", "h3_r8", "h3_r7")
H3_FINE, H3_COARSE = 8, 7
# Columns holding only these types (every wire value a string, or absent) skip the
# per-value conversions that other JSON types need.
_WIRE_TEXT = frozenset({str, type(None)})


@dataclass
class TypedBatch:
    """A batch of records as typed columns, with each row's reasons to reject it so far."""

    frame: pd.DataFrame  # contract columns (by name) + DERIVED_COLUMNS, index 0..n-1
    reasons: list[list[str]]
    unknown_fields: set[str]
    absent_required: list[str]

    def reject(self, mask: np.ndarray | pd.Series, reason: str | Sequence[str]) -> None:
        """Record `reason` (one text, or one per flagged row) for every flagged row."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if isinstance(reason, str):
            for i in positions:
                self.reasons[i].append(reason)
        else:
            for i, text in zip(positions, reason, strict=True):
                self.reasons[i].append(text)

    @property
    def rejected_mask(self) -> np.ndarray:
        return np.fromiter(map(bool, self.reasons), dtype=bool, count=len(self.reasons))


def _raw_columns(
    records: Sequence[dict[str, Any]], wires: list[str]
) -> tuple[list[pd.Series], list[bool]]:
    """Each wire field's values (None where a record lacks it), gathered in one pass over the
    records, and whether each column holds wire text only (strings and None)."""
    if not records:
        return [pd.Series([], dtype=object) for _ in wires], [True] * len(wires)
    rows = [tuple(map(record.get, wires)) for record in records]
    if set(map(type, chain.from_iterable(rows))) <= _WIRE_TEXT:
        # Strings and None only: numpy builds the records x fields block in one go (no value
        # is a list it could take for another dimension); columns are views of it.
        block = np.array(rows, dtype=object)
        columns = [pd.Series(block[:, i], dtype=object, copy=False) for i in range(len(wires))]
        return columns, [True] * len(wires)
    columns = [_object_series(values) for values in zip(*rows, strict=True)]
    return columns, [_is_wire_text(values) for values in columns]


def _is_wire_text(raw: pd.Series) -> bool:
    return set(map(type, raw.to_numpy())) <= _WIRE_TEXT


def _object_series(values: tuple[Any, ...]) -> pd.Series:
    # What pd.Series(list(values), dtype=object) builds, without two extra copies.
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return pd.Series(array, dtype=object, copy=False)


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True)


def _shown(values: pd.Series) -> list[str]:
    return [repr(v)[:60] for v in values]


def type_column(column: Column, raw: pd.Series, batch: TypedBatch) -> pd.Series:
    """Typed values of one column; unparseable values become NULL and a reject reason."""
    return _type_column(column, raw, batch, _is_wire_text(raw))


def _type_column(column: Column, raw: pd.Series, batch: TypedBatch, wire_text: bool) -> pd.Series:
    if column.null_values:
        raw = raw.where(~raw.isin(column.null_values), None)
    kind = column.type
    if kind == "text" and wire_text:
        return raw
    present = raw.notna().to_numpy()
    if kind == "text":
        if all(isinstance(v, str) for v in raw[present]):
            return raw
        return raw.map(_as_text)
    if kind in ("bigint", "integer", "double precision"):
        numbers = _plain_integers(raw) if wire_text and kind != "double precision" else None
        if numbers is None:
            texts = raw if wire_text else raw.map(_as_number_text)
            numbers = pd.to_numeric(texts, errors="coerce")
        bad = present & ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
        if kind != "double precision":
            whole = numbers.isna() | (numbers % 1 == 0)
            bad |= present & ~whole.to_numpy()
            limit = 2**31 - 1 if kind == "integer" else 2**63 - 1
            bad |= present & (numbers.abs() > limit).to_numpy()
        if bad.any():
            batch.reject(
                bad, [f"{column.name}: {v} is not a valid {kind}" for v in _shown(raw[bad])]
            )
        numbers = numbers.where(~bad)
        return numbers.astype("Int64") if kind != "double precision" else numbers.astype(float)
    if kind == "boolean":
        mapping: dict[Any, bool] = {True: True, False: False}
        mapping.update({v: True for v in column.true_values})
        mapping.update({v: False for v in column.false_values})
        typed = raw.map(lambda v: mapping.get(v) if v is not None else None)
        bad = present & typed.isna().to_numpy()
        if bad.any():
            batch.reject(bad, [f"{column.name}: {v} is not a boolean" for v in _shown(raw[bad])])
        return typed.astype("boolean")
    # timestamp, timestamptz, date
    texts = raw if wire_text else raw.where(raw.map(lambda v: isinstance(v, str)), None)
    # Without the cache: event times are mostly distinct, and hashing them costs 3x the parse.
    stamps = pd.to_datetime(texts, format="ISO8601", errors="coerce", cache=False)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = present & stamps.isna().to_numpy()
    if bad.any():
        batch.reject(bad, [f"{column.name}: {v} is not a timestamp" for v in _shown(raw[bad])])
    return stamps.dt.normalize() if kind == "date" else stamps


def _plain_integers(raw: pd.Series) -> pd.Series | None:
    """What `pd.to_numeric` makes of a column of plain digit strings (at most 15 digits, so
    exact even as float64 beside NULLs), parsed 10x faster; None for any other column."""
    values = raw.to_numpy()
    present = raw.notna().to_numpy()
    texts = values[present]
    joined = "".join(texts)  # one C-speed check of every value, failing fast on "N/A"
    if not (joined.isascii() and joined.isdigit()):
        return None
    if not 1 <= min(map(len, texts)) <= max(map(len, texts)) <= 15:
        return None
    integers = texts.astype(np.int64)
    if present.all():
        return pd.Series(integers, index=raw.index, name=raw.name)
    numbers = np.full(len(values), np.nan)
    numbers[present] = integers
    return pd.Series(numbers, index=raw.index, name=raw.name)


def _as_number_text(value: Any) -> Any:
    # Booleans and objects are not numbers; pandas would otherwise read True as 1.
    return value if isinstance(value, str) else (None if value is None else "not-a-number")


def event_times(contract: Contract, frame: pd.DataFrame, batch: TypedBatch) -> pd.Series:
    """The local event time: the event column plus, when split, its time-of-day column."""
    event = frame[contract.event_time]
    if contract.event_time_of_day is None:
        return event
    clock = frame[contract.event_time_of_day]
    offsets = pd.to_timedelta(clock.where(clock.notna(), None), errors="coerce")
    bad = (clock.notna() & offsets.isna()).to_numpy()
    if bad.any():
        name = contract.event_time_of_day
        batch.reject(bad, [f"{name}: {v} is not a time of day" for v in _shown(clock[bad])])
    return event + offsets.fillna(pd.Timedelta(0))


def h3_cells(latitudes: pd.Series, longitudes: pd.Series) -> tuple[pd.Series, pd.Series]:
    """H3 cells at the fine and coarse resolutions; NULL where a coordinate is missing."""
    import h3

    fine: list[str | None] = [None] * len(latitudes)
    coarse: list[str | None] = [None] * len(latitudes)
    lat = latitudes.to_numpy(dtype=float, na_value=np.nan)
    lon = longitudes.to_numpy(dtype=float, na_value=np.nan)
    ok = np.flatnonzero(
        np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    )
    to_cell, to_parent = h3.latlng_to_cell, h3.cell_to_parent
    lats, lons = lat.tolist(), lon.tolist()
    parents: dict[str, str] = {}  # incidents cluster: many rows share a fine cell
    for i in ok.tolist():
        cell = to_cell(lats[i], lons[i], H3_FINE)
        fine[i] = cell
        parent = parents.get(cell)
        if parent is None:
            parent = parents[cell] = to_parent(cell, H3_COARSE)
        coarse[i] = parent
    return pd.Series(fine, dtype=object), pd.Series(coarse, dtype=object)


def newest_change(
    contract: Contract, records: Sequence[dict[str, Any]], batch: TypedBatch
) -> str | None:
    """The latest change-column value seen (as the portal wrote it), for the watermark."""
    column = contract.change_column
    if column is None or not len(batch.frame):
        return None
    parsed = np.flatnonzero(batch.frame[column.name].notna().to_numpy())
    values = [records[int(i)][column.wire_name] for i in parsed]
    return max(values) if values else None


def type_records(
    contract: Contract, records: Sequence[dict[str, Any]], window_rows: int | None = None
) -> TypedBatch:
    """Type a batch of wire records under a contract; nothing is dropped, reasons collect.

    The first `window_rows` records came from the window query (all of them by default), the
    rest from the incremental changes query: `cp_origin` tells them apart.
    """
    with gc_paused():  # 10**5 records: the cyclic GC would rescan them over and over
        return _type_records(contract, records, window_rows)


def _type_records(
    contract: Contract, records: Sequence[dict[str, Any]], window_rows: int | None
) -> TypedBatch:
    batch = TypedBatch(pd.DataFrame(), [[] for _ in records], set(), [])
    known = {c.wire_name for c in contract.columns} | set(contract.ignore_fields)
    seen: set[str] = set().union(*records)
    batch.unknown_fields = {f for f in seen - known if not f.startswith(":")}
    batch.absent_required = [
        c.name for c in contract.columns if c.required and records and c.wire_name not in seen
    ]
    raw, wire_text = _raw_columns(records, [c.wire_name for c in contract.columns])
    columns = {
        c.name: _type_column(c, values, batch, text)
        for c, values, text in zip(contract.columns, raw, wire_text, strict=True)
    }
    frame = pd.DataFrame(columns)
    frame["event_time"] = event_times(contract, frame, batch)
    frame["h3_r8"], frame["h3_r7"] = h3_cells(frame[contract.latitude], frame[contract.longitude])
    in_window = len(records) if window_rows is None else window_rows
    frame["cp_origin"] = np.where(np.arange(len(records)) < in_window, "window", "changes")
    batch.frame = frame
    return batch
