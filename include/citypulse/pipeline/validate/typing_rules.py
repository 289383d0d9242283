"""Turn wire records (every value a string) into typed columns, noting what fails to parse.

Vectorised with pandas: a run's records are typed column by column, never row by row; the
columns are gathered from the records in one pass. Imported only inside tasks (it pulls in
pandas and h3).

Typing is total: whatever a portal sends, each value is typed to what its column's
PostgreSQL type stores, or its row is rejected with a reason naming the column (and then
quarantined with its record), so one hostile record never blocks its day. In particular:

- integers: a whole number beyond the column's range (bigint, integer) is rejected, however
  many digits it has; a number is never converted digit by digit beyond what bigint holds.
- numbers: NaN, infinities and numbers beyond a double's range are rejected.
- timestamps: outside PostgreSQL's years 1-9999, or not ISO 8601, rejected.
- text: a NUL or a lone UTF-16 surrogate (not storable as text) rejects its row.
- non-string JSON values: each type takes the JSON values that mean one of its values (a
  number in a numeric column, a boolean in a boolean one) and rejects the others. A text
  column takes a JSON number or boolean as its JSON text (`12`, `true`), which reads the
  same; a JSON object or array is rejected ("a JSON object, not text"), as objects are in
  every other type: stored as its JSON text, a nested value would pass for text nobody
  sent, and a contract that wants such a field names the scalars it needs instead (or
  ignores the field, as the contracts do Socrata's location objects).

Should anything still raise while typing a column, `ValidationFailed` names the dataset and
the column (terminal: a retry would type the same records again).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from citypulse.contracts.column_types import OFFSET_PATTERN, ColumnType, column_type
from citypulse.contracts.contract import Column, Contract
from citypulse.exceptions import ValidationFailed
from citypulse.pipeline import run_files
from citypulse.pipeline.run_files import Source, gc_paused, read_lines_at
from citypulse.storage import StoredObject

if TYPE_CHECKING:
    import pyarrow as pa

# Standard columns every typed table has besides the dataset's own (see RESERVED_COLUMNS).
DERIVED_COLUMNS = ("event_time", "h3_r8", "h3_r7")
H3_FINE, H3_COARSE = 8, 7
# Columns holding only these types (every wire value a string, or absent) skip the
# per-value conversions that other JSON types need.
_WIRE_TEXT = frozenset({str, type(None)})
_MICROSECONDS = np.dtype("datetime64[us]")
_FIRST, _LAST = np.datetime64("0001-01-01", "us"), np.datetime64("9999-12-31T23:59:59.999999")
_SUBMICRO = r"\.[0-9]{7,}"
# A timestamp text that names its offset (Z or +hh:mm, +hhmm, +hh).
_ZONED = r"T.*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
# The longest key a row may have, in UTF-8 bytes: a B-tree index entry holds about 2,700.
MAX_KEY_BYTES = 2_000
_DIGITS = re.compile(r"[+-]?[0-9]+")
# PostgreSQL's bigint, the widest integer column: a whole number of more significant digits
# than it has (19) is beyond every integer column, and stands as +-10**19 (just beyond it)
# so that no conversion or comparison costs more with its digits (Python refuses to convert
# more than 4,300 of them at all).
BIGINT_MAX = 2**63 - 1
_MAX_DIGITS = len(str(BIGINT_MAX))
_BEYOND = 10**_MAX_DIGITS
# Python writes an int of at most 4,300 digits (sys.get_int_max_str_digits()).
_UNWRITABLE = 10**4_000
# A value is quoted in a reason up to this many characters.
_SHOWN_CHARS = 40


@dataclass
class TypedBatch:
    """A batch of records as typed columns, with each row's reasons to reject it so far."""

    frame: pd.DataFrame  # contract columns (by name) + DERIVED_COLUMNS, index 0..n-1
    reasons: list[list[str]]
    unknown_fields: set[str]
    absent_required: list[str]
    # Where the wire records are, to quote a rejected row's record as it was sent: the
    # decoded records themselves, or the extract parts (one record a non-blank line) and
    # how many records each holds.
    records: Sequence[dict[str, Any]] | None = None
    sources: Sequence[Source] = ()
    source_rows: Sequence[int] = ()
    # The line of the first source where the batch's records begin (a chunk of a part).
    first_line: int = 0

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

    def raw_records(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """The records at `positions` exactly as the portal sent them."""
        if self.records is not None:
            return [self.records[int(i)] for i in positions]
        if not self.sources:
            raise ValueError("this batch keeps no wire records")
        starts = np.cumsum([0, *self.source_rows])
        wanted = np.asarray(positions, dtype=np.int64)
        part_of = np.searchsorted(starts, wanted, side="right") - 1
        found: dict[int, Any] = {}
        for part in np.unique(part_of).tolist():
            # Record i of the batch is line i - starts[part] of its part (+ first_line in the
            # first part).
            shift = int(starts[part]) - (self.first_line if part == 0 else 0)
            lines = read_lines_at(
                self.sources[part], (int(i) - shift for i in wanted[part_of == part])
            )
            found.update({line + shift: record for line, record in lines.items()})
        return [found[int(i)] for i in positions]


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


def _wire_texts(column: Column, raw: pd.Series, batch: TypedBatch) -> pd.Series:
    """A text column holding other JSON values: a number or a boolean as its JSON text; an
    object or an array (or a number too long to write) rejects its row."""
    texts: list[str | None] = []
    reasons: list[str | None] = []
    for value in raw.to_numpy():
        text, problem = _as_text(value)
        texts.append(text)
        reasons.append(None if problem is None else f"{column.name}: {problem}")
    bad = np.fromiter((r is not None for r in reasons), bool, len(reasons))
    if bad.any():
        batch.reject(bad, [r for r in reasons if r is not None])
    return _object_series(tuple(texts)).set_axis(raw.index)


def _as_text(value: Any) -> tuple[str | None, str | None]:
    """A wire value as text, or None and why it is not text."""
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, dict):
        return None, "a JSON object, not text"
    if isinstance(value, list | tuple):
        return None, "a JSON array, not text"
    if isinstance(value, int) and abs(value) >= _UNWRITABLE:  # no JSON decoder makes one
        return None, f"a number of {_digits(value):,} digits, too long to write as text"
    if isinstance(value, int | float):
        return json.dumps(value), None  # NaN and the infinities as Python's JSON writes them
    return None, f"a {type(value).__name__}, not text"


def _digits(value: int) -> int:
    """How many digits a (large) integer has, without writing them."""
    return int(math.log10(abs(value))) + 1 if value else 1


def _shown(values: pd.Series) -> list[str]:
    """Each value as a reason quotes it: short, quoted whole (reports group reasons by the
    text outside quotes), and never failing, whatever the value."""
    return [_shown_one(v) for v in values]


def _shown_one(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _BEYOND:
        return f"<an integer of {_digits(value):,} digits>"
    if isinstance(value, dict):
        return "<a JSON object>"
    if isinstance(value, list | tuple):
        return "<a JSON array>"
    return repr(value)[:_SHOWN_CHARS]


def _type_column(
    column: Column, raw: pd.Series, batch: TypedBatch, wire_text: bool, zone: str
) -> pd.Series:
    """Typed values of one column; unparseable values become NULL and a reject reason.
    `wire_text`: every value is a string or None (what the API sends); `zone`: the city's,
    for timestamps sent with an offset into a local-time column."""
    if column.null_values:
        raw = raw.where(~raw.isin(column.null_values), None)
    kind = column_type(column.type)
    present = raw.notna().to_numpy()
    if not wire_text:  # a JSON NaN is a value the portal sent (pandas takes it for NULL)
        present = present | np.fromiter((isinstance(v, float) for v in raw), bool, len(raw))
    if kind.family == "text":
        if not wire_text and not all(isinstance(v, str) for v in raw[present]):
            raw = _wire_texts(column, raw, batch)
        return _storable_text(column, raw, batch)
    if kind.family == "integer":
        integers = _plain_integers(raw) if wire_text else None
        if integers is None:
            integers = _integers(raw if wire_text else _mapped(raw, _as_number))
        limit = min(kind.limit or BIGINT_MAX, BIGINT_MAX)
        if integers.dtype == object:  # Python ints, at most +-_BEYOND
            big = np.fromiter((v is not None and abs(v) > limit for v in integers), bool)
        else:
            big = (integers.abs() > limit).to_numpy()
        bad = present & (integers.isna().to_numpy() | big)
        if bad.any():
            beyond = f" (beyond ±{limit:,})"
            batch.reject(
                bad,
                [
                    f"{column.name}: {v} is not a valid {kind.name}{beyond if out else ''}"
                    for v, out in zip(_shown(raw[bad]), big[bad], strict=True)
                ],
            )
        return integers.where(~bad, None).astype("Int64")
    if kind.family == "number":
        texts = _unencodable_to_none(raw if wire_text else _mapped(raw, _as_float))
        numbers = pd.to_numeric(texts, errors="coerce")
        bad = present & ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            batch.reject(
                bad, [f"{column.name}: {v} is not a valid {kind.name}" for v in _shown(raw[bad])]
            )
        return numbers.where(~bad).astype(float)
    if kind.family == "boolean":
        mapping: dict[Any, bool] = {True: True, False: False}
        mapping.update({v: True for v in column.true_values})
        mapping.update({v: False for v in column.false_values})
        typed = raw.map(lambda v: mapping.get(v) if isinstance(v, str | int | float) else None)
        bad = present & typed.isna().to_numpy()
        if bad.any():
            batch.reject(bad, [f"{column.name}: {v} is not a boolean" for v in _shown(raw[bad])])
        return typed.astype("boolean")
    texts = raw if wire_text else raw.where(raw.map(lambda v: isinstance(v, str)), None)
    stamps = _timestamps(_unencodable_to_none(texts), zone if kind.local else None)
    bad = present & stamps.isna().to_numpy()
    if bad.any():
        batch.reject(bad, [f"{column.name}: {v} is not a timestamp" for v in _shown(raw[bad])])
    return stamps.dt.normalize() if kind.day_only else stamps


def _storable_text(column: Column, raw: pd.Series, batch: TypedBatch) -> pd.Series:
    """Text as PostgreSQL can store it; a value it cannot (a NUL character, a lone UTF-16
    surrogate that UTF-8 cannot encode) rejects its row."""
    values = raw.to_numpy()
    joined = "".join(v for v in values if isinstance(v, str))
    if _encodable(joined) and "\x00" not in joined:
        return raw
    reasons = [_text_problem(column, v) for v in values]
    bad = np.fromiter((r is not None for r in reasons), bool, len(raw))
    batch.reject(bad, [r for r in reasons if r is not None])
    return raw.where(~bad, None)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _unencodable_to_none(texts: pd.Series) -> pd.Series:
    """The texts with those UTF-8 cannot encode (a lone surrogate, which pandas' parsers
    refuse with an exception) as None: not a value any parser would accept."""
    values = texts.to_numpy()
    if _encodable("".join(v for v in values if isinstance(v, str))):
        return texts
    keep = np.fromiter((not isinstance(v, str) or _encodable(v) for v in values), bool, len(values))
    return texts.where(keep, None)


def _text_problem(column: Column, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return _nul_reason(column)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{column.name}: holds a lone UTF-16 surrogate, which is not valid Unicode"
    return None


def _timestamps(texts: pd.Series, zone: str | None = None) -> pd.Series:
    """ISO 8601 texts as naive microsecond timestamps: one without an offset as written; one
    with an offset as that instant's wall time in `zone` (a local-time column), or in UTC
    (a timestamptz column, or no zone), mixed in one column too. NaT where a text is not a
    timestamp or lies outside PostgreSQL's years 1-9999. Digits beyond the microsecond round
    as PostgreSQL rounds them, without changing how the rest parse."""
    finer = texts.str.contains(_SUBMICRO, regex=True, na=False).to_numpy(dtype=bool)
    stamps = _parse_timestamps(texts.where(~finer, None) if finer.any() else texts)
    if finer.any():  # nanoseconds only reach 1677-2262: parsed on their own
        fine = _parse_timestamps(texts.where(finer, None))
        stamps = stamps.where(~finer, fine)
    if zone is not None:
        aware = texts.str.contains(_ZONED, regex=True, na=False).to_numpy(dtype=bool)
        if aware.any():
            local = stamps.dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
            stamps = stamps.where(~aware, local.astype(stamps.dtype))
    outside = ((stamps < _FIRST) | (stamps > _LAST)).to_numpy(dtype=bool)
    return stamps.where(~outside) if outside.any() else stamps


def _parse_timestamps(texts: pd.Series) -> pd.Series:
    # utc=True reads a value with an offset as that instant and one without as UTC, i.e. as
    # written; then the UTC wall time, naive. No cache: event times are mostly distinct,
    # and hashing them costs 3x the parse.
    stamps = pd.to_datetime(texts, format="ISO8601", errors="coerce", cache=False, utc=True)
    stamps = stamps.dt.tz_convert(None)
    if stamps.dtype == _MICROSECONDS:
        return stamps
    if stamps.dtype == np.dtype("datetime64[ns]"):
        stamps = stamps.dt.round("us")  # as PostgreSQL rounds, not truncated by astype
    return stamps.astype(_MICROSECONDS)


def _integers(values: pd.Series) -> pd.Series:
    """Whole numbers exactly (Python ints, not floats: keys beyond 2**53 keep every digit),
    as an object Series of int or None; `1e3` and `7.0` count, `7.5` and `N/A` do not. Texts,
    JSON numbers (int, float) or None; a whole number beyond bigint is +-_BEYOND."""
    array = values.to_numpy()
    out: list[int | None] = [None] * len(array)
    others: list[int] = []
    for i, value in enumerate(array):
        if isinstance(value, str):
            text = value.strip()
            if _DIGITS.fullmatch(text):
                out[i] = _whole(text)
            elif text and _encodable(text):
                others.append(i)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = _bounded(value)
    if others:
        numbers = pd.to_numeric(pd.Series(array[others], dtype=object), errors="coerce")
        for i, number in zip(others, numbers.tolist(), strict=True):
            out[i] = _bounded(number)
    return pd.Series(out, index=values.index, dtype=object)


def _whole(digits: str) -> int:
    """A text of digits (and a sign) as an int, +-_BEYOND when beyond bigint's 19 digits."""
    negative = digits.startswith("-")
    significant = digits.lstrip("+-").lstrip("0")
    number = int(significant or "0") if len(significant) <= _MAX_DIGITS else _BEYOND
    return -number if negative else number


def _bounded(number: Any) -> int | None:
    """A JSON number (or what pandas read from a text) as an int, +-_BEYOND when beyond
    bigint; None unless it is a whole number."""
    if not isinstance(number, int):
        try:
            if not (math.isfinite(number) and float(number).is_integer()):
                return None
        except (TypeError, ValueError, OverflowError):
            return None
    if abs(number) < _BEYOND:
        return int(number)
    return _BEYOND if number > 0 else -_BEYOND


def _nul_reason(column: Column) -> str:
    return f"{column.name}: holds a NUL character, which PostgreSQL text cannot store"


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


def _mapped(raw: pd.Series, convert: Callable[[Any], Any]) -> pd.Series:
    """Each value converted, as Python objects: `Series.map` would infer int64 or float64
    (a key beyond 2**53 rounded, beside a NULL)."""
    return _object_series(tuple(map(convert, raw.to_numpy()))).set_axis(raw.index)


def _as_number(value: Any) -> Any:
    # A JSON number is a number; booleans and objects are not (pandas would read True as 1).
    if value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)):
        return value
    return "not-a-number"


def _as_float(value: Any) -> Any:
    """A JSON number as a float (inf beyond a double's range, rejected as any inf is);
    texts and None as they are; booleans and objects as a text no number reads as."""
    number = _as_number(value)
    if isinstance(number, int):
        try:
            return float(number)
        except OverflowError:
            return math.inf if number > 0 else -math.inf
    return number


def event_times(contract: Contract, frame: pd.DataFrame, batch: TypedBatch) -> pd.Series:
    """The local event time: the event column plus, when split, its time-of-day column (a
    duration of at most a day); an event time beyond the year 9999 rejects its row."""
    event = frame[contract.event_time]
    if contract.event_time_of_day is None:
        return event
    name = contract.event_time_of_day
    clock = frame[name]
    texts = _unencodable_to_none(clock.astype(object).where(clock.notna(), None))
    offsets = pd.to_timedelta(texts, errors="coerce")
    offsets = offsets.where((offsets >= pd.Timedelta(0)) & (offsets <= pd.Timedelta(days=1)))
    bad = (clock.notna() & offsets.isna()).to_numpy()
    if bad.any():
        batch.reject(bad, [f"{name}: {v} is not a time of day" for v in _shown(clock[bad])])
    # In the event's own unit (microseconds): nanoseconds reach only 1677-2262.
    event = event + offsets.fillna(pd.Timedelta(0)).astype("timedelta64[us]")
    outside = ((event < _FIRST) | (event > _LAST)).to_numpy(dtype=bool)
    if outside.any():
        batch.reject(
            outside,
            [f"{name}: the event time {v} is outside the years 1-9999" for v in event[outside]],
        )
        event = event.where(~outside)
    return event


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


@contextmanager
def typing_column(contract: Contract, column: str) -> Iterator[None]:
    """Typing a column never raises by design; should it raise all the same (a bug, or a
    value no one foresaw), ValidationFailed names the dataset and the column: terminal, as a
    retry would type the same records again."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as exc:
        raise ValidationFailed(
            f"{contract.dag_id}: typing column {column!r} failed: {type(exc).__name__}: "
            f"{str(exc)[:300]}; nothing was loaded (a value typing does not handle: "
            "report it with the run's extract)"
        ) from exc


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
    columns = {}
    for c, values, text in zip(contract.columns, raw, wire_text, strict=True):
        with typing_column(contract, c.name):
            columns[c.name] = _type_column(c, values, batch, text, contract.timezone)
    frame = _with_derived(contract, pd.DataFrame(columns), batch, window_rows)
    batch.frame = frame
    batch.records = records
    return batch


# --- The Arrow path: the extract file read and typed a column at a time in C++ ------------
#
# Every wire value a type's pattern (`column_types`) accepts is typed by Arrow; any other
# present value (a token like "N/A", an offset where none is expected, an integer too long to
# be exact) goes through the pandas path above, a handful of values at a time, so both paths
# agree on every value and every reason. Text columns stay in Arrow memory (pandas' `str`).


def type_extract(
    contract: Contract, parts: Source | Sequence[Source], window_rows: int | None = None
) -> TypedBatch:
    """Type a run's extract parts (one source or several, in order): read and typed by
    Arrow when it can read them with the contract's fields as strings (what the API sends),
    record by record otherwise."""
    sources = [parts] if isinstance(parts, Path | StoredObject) else list(parts)
    table, rows = run_files.read_wire_tables(sources, contract)
    batch = type_table(contract, table, window_rows) if table is not None else None
    if batch is not None:
        batch.sources, batch.source_rows = sources, rows
    else:
        records = [record for source in sources for record in run_files.read_ndjson(source)]
        batch = type_records(contract, records, window_rows)
    return batch


def type_table(
    contract: Contract, table: pa.Table, window_rows: int | None = None
) -> TypedBatch | None:
    """`type_records` for an Arrow table of wire strings (`run_files.read_wire_table`); None
    when a required field holds no value in any record, where only the records can tell an
    absent field (schema drift) from one sent as null."""
    import pyarrow as pa

    n = table.num_rows
    if n == 0:
        return None
    for c in contract.columns:  # a boolean field no record holds (the others have a schema)
        if c.wire_name not in table.column_names:
            if c.required:
                return None  # drift: the records path names it
            table = table.append_column(c.wire_name, pa.nulls(n, pa.bool_()))
    required = [table.column(c.wire_name) for c in contract.columns if c.required]
    if any(column.null_count == n for column in required):
        return None
    inferred = [table.column(c.wire_name).type for c in contract.columns if c.type == "boolean"]
    if not all(
        pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_null(t) for t in inferred
    ):
        return None  # numbers in a boolean field: the record path words their reasons
    with gc_paused():
        batch = TypedBatch(pd.DataFrame(), [[] for _ in range(n)], set(), [])
        known = {c.wire_name for c in contract.columns} | set(contract.ignore_fields)
        batch.unknown_fields = {
            f for f in table.column_names if f not in known and not f.startswith(":")
        }
        columns = {}
        for c in contract.columns:
            with typing_column(contract, c.name):
                columns[c.name] = _arrow_column(
                    c, table.column(c.wire_name), batch, contract.timezone
                )
        batch.frame = _with_derived(contract, pd.DataFrame(columns), batch, window_rows)
    return batch


def _with_derived(
    contract: Contract, frame: pd.DataFrame, batch: TypedBatch, window_rows: int | None
) -> pd.DataFrame:
    """The typed contract columns plus event time, H3 cells and each row's origin."""
    n = len(frame)
    with typing_column(contract, contract.event_time_of_day or contract.event_time):
        frame["event_time"] = event_times(contract, frame, batch)
    latitude, longitude = contract.latitude, contract.longitude
    if latitude is not None and longitude is not None:
        with typing_column(contract, f"{latitude}, {longitude}"):
            frame["h3_r8"], frame["h3_r7"] = h3_cells(frame[latitude], frame[longitude])
    else:  # a dataset without a place: NULL cells keep every table's standard columns
        frame["h3_r8"] = frame["h3_r7"] = pd.Series([None] * n, dtype=object)
    in_window = n if window_rows is None else window_rows
    frame["cp_origin"] = np.where(np.arange(n) < in_window, "window", "changes")
    _reject_long_keys(contract, frame, batch)
    return frame


def _reject_long_keys(contract: Contract, frame: pd.DataFrame, batch: TypedBatch) -> None:
    """A text key longer than an index entry holds rejects its row (the table's key index
    would refuse it, and the whole day with it)."""
    if column_type(contract.key_column.type).family != "text" or not len(frame):
        return
    keys = frame[contract.key]
    chars = keys.str.len().to_numpy(dtype=float, na_value=0)
    suspects = np.flatnonzero(chars > MAX_KEY_BYTES // 4)  # 4 bytes a character at most
    sizes = {int(i): len(str(keys.iat[i]).encode("utf-8", "surrogatepass")) for i in suspects}
    long = {i: size for i, size in sizes.items() if size > MAX_KEY_BYTES}
    if long:
        mask = np.zeros(len(frame), dtype=bool)
        mask[list(long)] = True
        batch.reject(
            mask,
            [
                f"{contract.key}: a key of {size:,} bytes, longer than the {MAX_KEY_BYTES:,} "
                "a key may be (an index entry holds about 2,700)"
                for size in long.values()
            ],
        )


def _arrow_column(column: Column, wire: Any, batch: TypedBatch, zone: str) -> pd.Series:
    """One column typed from Arrow wire strings, as `_type_column` would type it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_values and pa.types.is_string(wire.type):
        tokens = pc.is_in(wire, value_set=pa.array(column.null_values, pa.string()))
        wire = pc.if_else(tokens, pa.scalar(None, pa.string()), wire)
    kind = column_type(column.type)
    if kind.family == "text":  # Arrow holds valid UTF-8 only: a NUL is all to look for
        nul = pc.fill_null(pc.match_substring(wire, "\x00"), False)
        if pc.any(nul).as_py():  # PostgreSQL text cannot hold it: the row is rejected
            positions = np.flatnonzero(nul.to_numpy(zero_copy_only=False))
            batch.reject(nul.to_numpy(zero_copy_only=False), [_nul_reason(column)] * len(positions))
            wire = pc.if_else(nul, pa.scalar(None, pa.string()), wire)
        return pd.Series(wire.to_pandas(), copy=False)
    if kind.family == "boolean" and not pa.types.is_string(wire.type):
        # JSON booleans (or no value at all): nothing to parse.
        typed = pc.cast(wire, pa.bool_())
        ok = pc.is_valid(typed)
    elif kind.family == "boolean":
        true = pc.is_in(wire, value_set=pa.array(column.true_values, pa.string()))
        false = pc.is_in(wire, value_set=pa.array(column.false_values, pa.string()))
        typed = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        ok = pc.or_(true, false)
    elif kind.arrow is not None:
        typed, ok = _arrow_cast(kind, wire)
    else:  # a type only the pandas path knows
        return _type_column(column, _object_series(tuple(wire.to_pylist())), batch, True, zone)
    series = pd.Series(typed.to_pandas(types_mapper=_pandas_dtype), copy=False)
    present = pc.is_valid(wire).to_numpy(zero_copy_only=False)
    left = np.flatnonzero(present & ~pc.fill_null(ok, False).to_numpy(zero_copy_only=False))
    if len(left):  # the values the patterns refuse: typed (or rejected) by the pandas path
        raw = _object_series(tuple(wire.take(pa.array(left)).to_pylist()))
        few = TypedBatch(pd.DataFrame(), [[] for _ in left], set(), [])
        typed_few = _type_column(column, raw, few, True, zone)
        series.iloc[left] = typed_few.array  # its own dtype: no trip through float64
        for position, reasons in zip(left.tolist(), few.reasons, strict=True):
            batch.reasons[position].extend(reasons)
    return series


def _arrow_cast(kind: ColumnType, wire: Any) -> tuple[Any, Any]:
    """Typed values of the wire strings a type's pattern accepts, and which those are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    assert kind.arrow is not None
    pattern, target = kind.arrow
    ok = pc.fill_null(pc.match_substring_regex(wire, pattern), False)
    accepted = pc.if_else(ok, wire, pa.scalar(None, pa.string()))
    arrow_type = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us"),
    }[target]
    zoned = pa.timestamp("us", "UTC")
    try:
        typed = pc.cast(accepted, arrow_type)
        # Values with an offset into a UTC column, as their UTC time (into a local-time
        # column they go to the pandas path, which knows the city's zone).
        if target == "timestamp" and not kind.local:
            aware = pc.fill_null(pc.match_substring_regex(wire, OFFSET_PATTERN), False)
            if pc.any(aware).as_py():
                utc = pc.cast(pc.if_else(aware, wire, pa.scalar(None, pa.string())), zoned)
                typed = pc.if_else(aware, pc.cast(utc, pa.timestamp("us")), typed)
                ok = pc.or_(ok, aware)
    except pa.ArrowInvalid:  # a date the pattern allows and the calendar does not (02-30)
        none = pa.array(np.zeros(len(wire), dtype=bool))
        return pa.nulls(len(wire), pa.timestamp("us")), none
    if kind.limit is not None and kind.limit < 2**63 - 1:  # beyond it: the pandas path words it
        fits = pc.fill_null(pc.less_equal(pc.abs(typed), kind.limit), True)
        ok = pc.and_(ok, fits)
        typed = pc.if_else(fits, typed, pa.scalar(None, pa.int64()))
    if target == "timestamp":  # years PostgreSQL cannot store: the pandas path rejects them
        first, last = (pa.scalar(v.item(), pa.timestamp("us")) for v in (_FIRST, _LAST))
        inside = pc.and_(pc.greater_equal(typed, first), pc.less_equal(typed, last))
        ok = pc.and_(ok, pc.fill_null(inside, True))
    if kind.day_only:
        typed = pc.floor_temporal(typed, unit="day")
    return typed, ok


def _pandas_dtype(arrow_type: Any) -> Any:
    """The nullable pandas dtype typing gives integers and booleans (Arrow's own choice
    would be float64 and object beside NULLs)."""
    import pyarrow as pa

    if pa.types.is_int64(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None
