"""Turn wire records (every value a string) into typed columns, noting what fails to parse.

Vectorised with pandas: a run's records are typed column by column, never row by row.
Imported only inside tasks (it pulls in pandas and h3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citypulse.contracts import Column, Contract

# Standard columns every typed table has besides the dataset's own (see RESERVED_COLUMNS).
DERIVED_COLUMNS = ("event_time", "h3_r8", "h3_r7")
H3_FINE, H3_COARSE = 8, 7


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
        return np.fromiter((bool(r) for r in self.reasons), dtype=bool, count=len(self.reasons))


def _raw_column(records: Sequence[dict[str, Any]], wire: str) -> pd.Series:
    return pd.Series([r.get(wire) for r in records], dtype=object)


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
    if column.null_values:
        raw = raw.where(~raw.isin(column.null_values), None)
    present = raw.notna().to_numpy()
    kind = column.type
    if kind == "text":
        if all(isinstance(v, str) for v in raw[present]):
            return raw
        return raw.map(_as_text)
    if kind in ("bigint", "integer", "double precision"):
        numbers = pd.to_numeric(raw.map(_as_number_text), errors="coerce")
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
    texts = raw.where(raw.map(lambda v: isinstance(v, str)), None)
    stamps = pd.to_datetime(texts, format="ISO8601", errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = present & stamps.isna().to_numpy()
    if bad.any():
        batch.reject(bad, [f"{column.name}: {v} is not a timestamp" for v in _shown(raw[bad])])
    return stamps.dt.normalize() if kind == "date" else stamps


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
    for i in ok:
        cell = to_cell(lat[i], lon[i], H3_FINE)
        fine[i] = cell
        coarse[i] = to_parent(cell, H3_COARSE)
    return pd.Series(fine, dtype=object), pd.Series(coarse, dtype=object)


def type_records(contract: Contract, records: Sequence[dict[str, Any]]) -> TypedBatch:
    """Type a batch of wire records under a contract; nothing is dropped, reasons collect."""
    batch = TypedBatch(pd.DataFrame(), [[] for _ in records], set(), [])
    known = {c.wire_name for c in contract.columns} | set(contract.ignore_fields)
    seen: set[str] = set()
    for record in records:
        seen.update(record.keys())
    batch.unknown_fields = {f for f in seen - known if not f.startswith(":")}
    batch.absent_required = [
        c.name for c in contract.columns if c.required and records and c.wire_name not in seen
    ]
    columns = {
        c.name: type_column(c, _raw_column(records, c.wire_name), batch) for c in contract.columns
    }
    frame = pd.DataFrame(columns)
    frame["event_time"] = event_times(contract, frame, batch)
    frame["h3_r8"], frame["h3_r7"] = h3_cells(frame[contract.latitude], frame[contract.longitude])
    batch.frame = frame
    return batch
