"""Realistic SODA 2.1 JSON records for a city dataset, driven only by its data contract.

The generator reads the contract and its sample profile (`citypulse_dev/samples/<dag_id>.yaml`:
per-dataset settings and per-column hints, see `citypulse_dev.profiles`) and has no
dataset-specific branches, so a new city YAML gets sample data for free (without a profile,
every column is drawn from its role and type). Records look like
what the live portals send: every value a string (checkbox columns as JSON booleans), floating
local timestamps `YYYY-MM-DDTHH:MM:SS.000`, null fields omitted, an optional Socrata location
object, a few deliberately malformed rows and spatial hotspots that persist from day to day.

Values are built column by column with numpy (one vectorised draw per column) and only then
zipped into dicts, which keeps 200,000 records to a few seconds on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from citypulse.contracts.column_types import column_type
from citypulse.contracts.contract import Column, Contract, load_contracts
from citypulse.pipeline.run_files import gc_paused
from citypulse_dev.profiles import ColumnSample, SampleProfile, sample_profile

# Relative volume of records per local hour (0..23): quiet at 3-5 am, busiest late afternoon
# and evening, the shape both 311 requests and police reports have in the real extracts.
HOUR_PROFILE = (
    2.6, 1.9, 1.5, 1.0, 0.8, 0.9, 1.5, 2.6, 3.6, 4.2, 4.6, 4.9,
    5.2, 5.3, 5.4, 5.6, 5.8, 5.9, 5.8, 5.4, 5.0, 4.5, 3.9, 3.2,
)  # fmt: skip
# Mild weekly rhythm of the daily volume (Monday first): weekends are a little quieter.
WEEKDAY_VOLUME = (1.04, 1.03, 1.02, 1.02, 1.03, 0.95, 0.91)
# How strongly each hotspot's weight swings over the week (a mild +-15 %).
HOTSPOT_WEEKLY_SWING = 0.15
# Stops with several charges (derive: group_id): how many rows one event yields.
GROUP_SIZES = (1, 2, 3)
GROUP_WEIGHTS = (0.6, 0.25, 0.15)
# later_time: between one hour and ten days after the event, log-uniform (most close fast).
LATER_MIN_S = 3600
LATER_MAX_S = 10 * 86400
# Sequential integer keys get a fixed block per day so any range of days stays unique; the
# block is sized so that every day from the contract's start_date to KEY_LAST_DAY fits.
KEY_LAST_DAY = date(2060, 1, 1)
# Range of an integer key whose column gives no int_range (ten digits, like many portals).
DEFAULT_KEY_RANGE = (1_000_000_000, 9_999_999_999)
# Share of rows written with one of a column's `null_values` tokens (e.g. REDACTED) when
# the column has tokens but no null_share of its own.
TOKEN_SHARE_DEFAULT = 0.02
# Of the rows drawn as null in a column that has `null_values`, the share spelled as a token
# rather than omitted (Seattle: null_share 0.1 -> ~5 % "REDACTED", ~5 % absent).
TOKEN_FRACTION = 0.5
HUMAN_ADDRESS = json.dumps({"address": "", "city": "", "state": "", "zip": ""})

# Kinds of malformed rows; each is something live portals really send and each leaves the
# event time and the key intact, so the row still reaches the client inside a window query.
OUT_OF_BBOX = "out_of_bbox"
UNPARSEABLE_NUMBER = "unparseable_number"
MISSING_REQUIRED = "missing_required"
VALUE_NOT_ALLOWED = "value_not_allowed"
UNPARSEABLE_BOOLEAN = "unparseable_boolean"
MALFORMED_KINDS = (
    OUT_OF_BBOX,
    UNPARSEABLE_NUMBER,
    MISSING_REQUIRED,
    VALUE_NOT_ALLOWED,
    UNPARSEABLE_BOOLEAN,
)
BAD_NUMBER = "N/A"
BAD_VALUE = "??"
BAD_BOOLEAN = "maybe"

_NUMERIC = ("integer", "number")  # column families of numbers
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_BASE36 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_MASK62 = (1 << 62) - 1
_ROW_ID_SLOTS = 1 << 24  # rows per day a Socrata-like :id can number uniquely


@dataclass(frozen=True)
class GeneratedDay:
    """One local day of wire-format records and which of them are deliberately malformed."""

    records: list[dict[str, Any]]  # sorted by event time
    malformed: dict[int, str]  # index in records -> one of MALFORMED_KINDS


@dataclass(frozen=True)
class _Slot:
    """A column with the role the generator gives it."""

    column: Column
    sample: ColumnSample  # the column's hints in the profile
    derive: str | None

    @property
    def wire(self) -> str:
        return self.column.wire_name

    @property
    def is_system(self) -> bool:
        return self.wire.startswith(":")


@dataclass
class _Day:
    """Everything one day's columns are drawn from."""

    contract: Contract
    profile: SampleProfile
    day: date
    n: int
    seed: int
    rng: random.Random
    gen: np.random.Generator
    group_of: np.ndarray  # record -> event (several rows share one event via group_id)
    n_groups: int
    seconds: np.ndarray  # per record, seconds after local midnight (sorted)
    lat: np.ndarray  # per record, always drawn (malformed rows may need them)
    lon: np.ndarray
    coord_state: np.ndarray  # per record: 0 present, 1 omitted, 2 written as a null token


def _slots(contract: Contract, profile: SampleProfile) -> list[_Slot]:
    """Each column's effective derive: its own hint, else the role the contract names."""
    implied: dict[str, str] = {}
    if contract.latitude is not None and contract.longitude is not None:
        implied.update({contract.latitude: "latitude", contract.longitude: "longitude"})
    if contract.event_time_of_day:
        implied[contract.event_time_of_day] = "event_time_of_day"
    event = contract.event_column
    implied[event.name] = "event_date" if column_type(event.type).day_only else "event_time"
    key = contract.key_column
    implied[key.name] = "row_id" if key.wire_name.startswith(":") else "key"
    slots = []
    for column in contract.columns:
        sample = profile.column(column.name)
        slots.append(_Slot(column, sample, sample.derive or implied.get(column.name)))
    # The portal itself sets system fields (`:updated_at`, `:created_at`); only a row id the
    # contract keys on is generated, so that the stand-in and the warehouse agree on keys.
    return [s for s in slots if not s.is_system or s.derive == "row_id"]


def _seed_int(*parts: object) -> int:
    """A stable 62-bit integer from text (Python's hash() is salted per process)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & _MASK62


def _ascii(grid: np.ndarray) -> list[str]:
    """Rows of a uint8 matrix of ASCII codes as Python strings, without a Python loop."""
    n, width = grid.shape
    if n == 0:
        return []
    if width == 0:
        return [""] * n
    raw = np.ascontiguousarray(grid).view(f"S{width}").ravel()
    return raw.astype(f"U{width}").tolist()


def _floating(day: date, seconds: np.ndarray) -> list[str]:
    """Floating timestamps `YYYY-MM-DDTHH:MM:SS.000` for offsets from the day's midnight."""
    stamps = np.datetime64(day.isoformat(), "ms") + seconds.astype("timedelta64[s]")
    return np.datetime_as_string(stamps, unit="ms").tolist()


def _midnight(day: date) -> str:
    """The day's start as a floating timestamp, how Socrata sends date-only values."""
    return f"{day.isoformat()}T00:00:00.000"


def _digits(values: np.ndarray) -> list[str]:
    """Plain integer strings ("61276295"); an f-string beats astype(str) and map(str)."""
    return [f"{v}" for v in values.tolist()]


def _hour_profile(day: date, timezone: str) -> np.ndarray:
    """Hour weights for the day, zero for wall hours that do not exist (spring forward)."""
    zone = zoneinfo.ZoneInfo(timezone)
    utc = zoneinfo.ZoneInfo("UTC")
    weights = np.array(HOUR_PROFILE, dtype=float)
    for hour in range(24):
        for minute in (0, 30):
            wall = datetime(day.year, day.month, day.day, hour, minute)
            back = wall.replace(tzinfo=zone).astimezone(utc).astimezone(zone)
            if back.replace(tzinfo=None) != wall:
                weights[hour] = 0.0
    return weights / weights.sum()


def _daily_volume(contract: Contract, profile: SampleProfile, day: date, seed: int) -> int:
    """Records on a day: the profile's volume, a weekly rhythm and a little noise."""
    noise = random.Random(f"{seed}:{contract.dag_id}:{day.isoformat()}:volume").gauss(0, 0.06)
    volume = profile.records_per_day * WEEKDAY_VOLUME[day.weekday()] * math.exp(noise)
    return max(0, round(volume))


def _groups(gen: np.random.Generator, n: int, grouped: bool) -> tuple[np.ndarray, int]:
    """Map records to events; with a group_id column 1-3 consecutive rows share one event."""
    if not grouped or n == 0:
        return np.arange(n), n
    sizes = gen.choice(GROUP_SIZES, size=n, p=GROUP_WEIGHTS)
    ends = np.cumsum(sizes)
    n_groups = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:n_groups].copy()
    sizes[-1] -= int(ends[n_groups - 1]) - n  # trim the last event to exactly n rows
    return np.repeat(np.arange(n_groups), sizes), n_groups


def _coordinates(
    contract: Contract, profile: SampleProfile, day: date, gen: np.random.Generator, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points: `hotspot_share` around the weighted hotspots, the rest uniform in the bbox
    (none for a dataset without a place: its records carry no coordinates)."""
    box = contract.bbox
    if box is None:
        return np.zeros(count), np.zeros(count)
    lat = box.min_lat + gen.random(count) * (box.max_lat - box.min_lat)
    lon = box.min_lon + gen.random(count) * (box.max_lon - box.min_lon)
    if profile.hotspots and count:
        # Each hotspot swings mildly over the week with a fixed phase, so its rank persists
        # from day to day (yesterday's hot hexagon predicts today's) yet weekdays differ.
        phases = np.arange(len(profile.hotspots)) * (2 * math.pi / len(profile.hotspots))
        swing = 1 + HOTSPOT_WEEKLY_SWING * np.sin(2 * math.pi * day.weekday() / 7 + phases)
        weights = np.array([h.weight for h in profile.hotspots]) * swing
        near = np.flatnonzero(gen.random(count) < profile.hotspot_share)
        which = gen.choice(len(profile.hotspots), size=near.size, p=weights / weights.sum())
        centre_lat = np.array([h.lat for h in profile.hotspots])[which]
        centre_lon = np.array([h.lon for h in profile.hotspots])[which]
        spread_km = np.array([h.spread_km for h in profile.hotspots])[which]
        # A degree of latitude is ~111 km everywhere; a degree of longitude shrinks by cos(lat).
        lat[near] = centre_lat + gen.standard_normal(near.size) * spread_km / 110.574
        km_per_lon = 111.320 * np.cos(np.radians(centre_lat))
        lon[near] = centre_lon + gen.standard_normal(near.size) * spread_km / km_per_lon
    # Clip a hair inside the box so that well-formed rows pass any inclusive/exclusive check.
    eps = 1e-6
    np.clip(lat, box.min_lat + eps, box.max_lat - eps, out=lat)
    np.clip(lon, box.min_lon + eps, box.max_lon - eps, out=lon)
    return lat, lon


def _null_shares(gen: np.random.Generator, count: int, share: float, tokens: bool) -> np.ndarray:
    """Per row: 0 keep, 1 omit, 2 write a null token (only where the column has tokens)."""
    state = np.zeros(count, dtype=np.int8)
    if share <= 0 and not tokens:
        return state
    u = gen.random(count)
    if share <= 0:
        state[u < TOKEN_SHARE_DEFAULT] = 2
        return state
    state[u < share] = 1
    if tokens:
        state[u < share * TOKEN_FRACTION] = 2
    return state


def _start_day(
    contract: Contract, profile: SampleProfile, day: date, seed: int, records: int | None
) -> _Day:
    rng = random.Random(f"{seed}:{contract.dag_id}:{day.isoformat()}")
    gen = np.random.default_rng(rng.getrandbits(128))
    n = _daily_volume(contract, profile, day, seed) if records is None else records
    if n < 0:
        raise ValueError(f"records must be >= 0, not {n}")
    slots = _slots(contract, profile)
    group_of, n_groups = _groups(gen, n, any(s.derive == "group_id" for s in slots))
    # Event instants: an hour from the profile, then a uniform second inside it.
    hours = gen.choice(24, size=n_groups, p=_hour_profile(day, contract.timezone))
    seconds = np.sort(hours * 3600 + gen.integers(0, 3600, n_groups))
    lat, lon = _coordinates(contract, profile, day, gen, n_groups)
    coords = [s for s in slots if s.derive in ("latitude", "longitude")]
    share = max((s.sample.null_share for s in coords), default=0.0)
    tokens = any(s.column.null_values for s in coords)
    coord_state = _null_shares(gen, n_groups, share, tokens)
    # Rows of one event share its instant, place and whether the place is known.
    return _Day(
        contract=contract,
        profile=profile,
        day=day,
        n=n,
        seed=seed,
        rng=rng,
        gen=gen,
        group_of=group_of,
        n_groups=n_groups,
        seconds=seconds[group_of],
        lat=lat[group_of],
        lon=lon[group_of],
        coord_state=coord_state[group_of],
    )


def _pattern(gen: np.random.Generator, pattern: str, n: int) -> list[str]:
    """'#' becomes a random digit, '@' a random uppercase letter, anything else stays."""
    raw = pattern.encode("utf-8")
    template = np.frombuffer(raw, dtype=np.uint8)
    grid = np.tile(template, (n, 1))
    for mark, low, high in ((b"#", 48, 58), (b"@", 65, 91)):
        where = np.flatnonzero(template == mark[0])
        if where.size:
            grid[:, where] = gen.integers(low, high, (n, where.size), dtype=np.uint8)
    if raw.isascii():
        return _ascii(grid)
    # UTF-8 continuation bytes are >= 0x80, so replacing '#'/'@' bytes never splits a character.
    return [bytes(row).decode("utf-8") for row in grid]


def _choose(gen: np.random.Generator, slot: _Slot, options: Sequence[Any], n: int) -> list[Any]:
    """One of `options` per row, weighted by the column's `weights` if given."""
    column, weights = slot.column, slot.sample.weights
    if weights is not None and len(weights) != len(options):
        raise ValueError(f"column {column.name}: {len(weights)} weights for {len(options)} choices")
    p = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)
    return _pick(gen, options, p, n)


def _pick(
    gen: np.random.Generator, options: Sequence[Any], p: np.ndarray | None, n: int
) -> list[Any]:
    """`n` draws from `options`, reusing the option objects (no per-row string copies)."""
    return np.array(options, dtype=object)[gen.choice(len(options), size=n, p=p)].tolist()


def _uuids(gen: np.random.Generator, n: int) -> list[str]:
    """UUID4-shaped lowercase strings from the seeded generator."""
    nibbles = gen.integers(0, 16, (n, 32), dtype=np.uint8)
    nibbles[:, 12] = 4  # version 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)  # RFC 4122 variant
    hexed = _HEX[nibbles]
    grid = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        grid[:, at : at + stop - start] = hexed[:, start:stop]
    return _ascii(grid)


def _row_ids(ctx: _Day) -> list[str]:
    """Socrata-style `row-xxxx.xxxx.xxxx` ids, unique over all days and rows.

    (day ordinal, row number) is a unique integer below 2**44; a fixed bijection on 62 bits
    scrambles it, so ids look random yet can never collide; 36**12 > 2**62 digits fit.
    """
    if ctx.n > _ROW_ID_SLOTS:
        raise ValueError(f"at most {_ROW_ID_SLOTS} rows per day get unique :id values")
    mask = np.uint64(_MASK62)
    x = np.arange(ctx.n, dtype=np.uint64) + np.uint64(ctx.day.toordinal() * _ROW_ID_SLOTS)
    x ^= np.uint64(_seed_int(ctx.seed, ctx.contract.dag_id, "row_id"))
    for multiplier, shift in ((0x9E3779B97F4A7C15, 29), (0xBF58476D1CE4E5B9, 32)):
        x = (x * np.uint64(multiplier)) & mask  # odd multiplier: a bijection mod 2**62
        x ^= x >> np.uint64(shift)  # xor-shift: a bijection too
    digits = np.empty((ctx.n, 12), dtype=np.uint8)
    for position in range(11, -1, -1):
        digits[:, position] = x % np.uint64(36)
        x //= np.uint64(36)
    chars = _BASE36[digits]
    grid = np.empty((ctx.n, 18), dtype=np.uint8)
    grid[:, :4] = np.frombuffer(b"row-", dtype=np.uint8)
    grid[:, 8] = grid[:, 13] = ord(".")
    grid[:, 4:8], grid[:, 9:13], grid[:, 14:18] = chars[:, :4], chars[:, 4:8], chars[:, 8:]
    return _ascii(grid)


def _int_keys(ctx: _Day, low: int, high: int) -> list[str]:
    """Sequential keys in event order, a fixed block per day: unique over any range of days."""
    span = max(1, (high - low + 1) // (KEY_LAST_DAY - ctx.contract.start_date).days)
    block = max(span, 2 * ctx.profile.records_per_day, 1)
    first = low + (ctx.day - ctx.contract.start_date).days * block
    return [str(first + i) for i in range(ctx.n)]


def _later(ctx: _Day) -> list[str]:
    """A floating timestamp 1 h - 10 days after the row's event (may be after the day)."""
    logs = ctx.gen.uniform(math.log(LATER_MIN_S), math.log(LATER_MAX_S), ctx.n)
    return _floating(ctx.day, ctx.seconds + np.exp(logs).astype(np.int64))


def _fallback(ctx: _Day, column: Column) -> list[Any]:
    """Values for a column without hints: something plausible for its type."""
    gen, n = ctx.gen, ctx.n
    if column.values:
        return _pick(gen, column.values, None, n)
    kind = column_type(column.type)
    if kind.family == "integer":
        return _digits(gen.integers(0, 10_000, n))
    if kind.family == "number":
        return [repr(v) for v in np.round(gen.random(n) * 1000, 3).tolist()]
    if kind.family == "boolean":
        return _pick(gen, [column.false_values[0], column.true_values[0]], None, n)
    if kind.family == "timestamp":
        return [_midnight(ctx.day)] * n if kind.day_only else _later(ctx)
    return _pattern(gen, "@@@-###", n)


def _values(ctx: _Day, slot: _Slot) -> list[Any]:
    """All rows' wire values for one column; None marks a field to omit."""
    column, sample, gen, n = slot.column, slot.sample, ctx.gen, ctx.n
    derive = slot.derive
    if derive == "key":
        if sample.int_range is not None:
            return _int_keys(ctx, *sorted(sample.int_range))
        if column_type(column.type).family == "integer":
            return _int_keys(ctx, *DEFAULT_KEY_RANGE)
        return _uuids(gen, n)
    if derive == "row_id":
        return _row_ids(ctx)
    if derive == "group_id":
        return np.array(_uuids(gen, ctx.n_groups), dtype=object)[ctx.group_of].tolist()
    if derive == "event_time":
        return _floating(ctx.day, ctx.seconds)
    if derive == "event_date":
        return [_midnight(ctx.day)] * n
    if derive == "event_time_of_day":
        return [stamp[11:19] for stamp in _floating(ctx.day, ctx.seconds)]
    if derive == "event_year":
        return [str(ctx.day.year)] * n
    if derive in ("latitude", "longitude"):
        source = ctx.lat if derive == "latitude" else ctx.lon
        return [repr(v) for v in source.tolist()]  # repr: all the digits, like the portals
    if derive == "later_time":
        return _later(ctx)
    if sample.choices:
        # "" would be an empty field on the wire, which portals never send: omit instead.
        options = [c if c != "" else None for c in sample.choices]
        values = _choose(gen, slot, options, n)
        if sample.as_json_boolean:
            truthy = set(column.true_values)
            return [None if v is None else v in truthy for v in values]
        return values
    if sample.pattern:
        return _pattern(gen, sample.pattern, n)
    if sample.int_range is not None:
        low, high = sorted(sample.int_range)
        return _digits(gen.integers(low, high + 1, n))
    return _fallback(ctx, column)


def _blank(ctx: _Day, slot: _Slot, values: list[Any]) -> None:
    """Apply null_share (None: omit) and null_values (write a token) to one column in place."""
    column = slot.column
    tokens = column.null_values
    if slot.derive in ("latitude", "longitude"):
        # The pair shares one draw per event: both omitted, or both written as the token.
        state = ctx.coord_state
    elif column.required or slot.derive in ("key", "row_id", "event_time", "event_date"):
        # Key, event time and required columns are always present in well-formed rows: a
        # missing required field is a deliberate malformation, never a sampling accident.
        return
    else:
        state = _null_shares(ctx.gen, ctx.n, slot.sample.null_share, bool(tokens))
    for i in np.flatnonzero(state == 1 if tokens else state).tolist():
        values[i] = None
    if tokens:
        for i in np.flatnonzero(state == 2).tolist():
            values[i] = tokens[0] if len(tokens) == 1 else ctx.rng.choice(tokens)


def _outside_bbox(ctx: _Day, i: int) -> tuple[str, str]:
    """Coordinates a real portal might send that lie outside the city's box."""
    box = ctx.contract.bbox
    assert box is not None  # only mapped datasets have coordinate slots (sample_profile)
    lat, lon = float(ctx.lat[i]), float(ctx.lon[i])
    style = ctx.rng.choice(("zero", "swapped", "nearby"))
    if style == "swapped" and not (
        box.min_lat <= lon <= box.max_lat and box.min_lon <= lat <= box.max_lon
    ):
        return repr(lon), repr(lat)
    if style == "nearby":
        # Geocoded just across the border (the real Montgomery extract has such rows).
        step = ctx.rng.uniform(0.005, 0.05)
        edge = ctx.rng.randrange(4)
        if edge == 0:
            lat = box.max_lat + step
        elif edge == 1:
            lat = box.min_lat - step
        elif edge == 2:
            lon = box.max_lon + step
        else:
            lon = box.min_lon - step
        return repr(lat), repr(lon)
    return "0", "0"  # as the old Seattle export writes its unknown positions


def _malform(ctx: _Day, slots: list[_Slot], columns: dict[str, list[Any]]) -> dict[int, str]:
    """Corrupt `malformed_share` of the rows, never touching the key or the event time."""
    rng = ctx.rng
    protected = {"key", "row_id", "event_time", "event_date"}
    plain = [s for s in slots if s.derive not in protected and not s.is_system]
    lat_slot = next((s for s in slots if s.derive == "latitude"), None)
    lon_slot = next((s for s in slots if s.derive == "longitude"), None)
    candidates: dict[str, list[_Slot]] = {
        UNPARSEABLE_NUMBER: [
            s
            for s in plain
            if column_type(s.column.type).family in _NUMERIC
            and s.derive not in ("latitude", "longitude")
        ],
        MISSING_REQUIRED: [s for s in plain if s.column.required],
        VALUE_NOT_ALLOWED: [
            s
            for s in plain
            if s.column.values
            and BAD_VALUE not in s.column.values
            and BAD_VALUE not in s.column.null_values
        ],
        # A checkbox column can only hold true/false on the wire; text flags can hold anything.
        UNPARSEABLE_BOOLEAN: [
            s
            for s in plain
            if column_type(s.column.type).family == "boolean" and not s.sample.as_json_boolean
        ],
    }
    kinds = [k for k, found in candidates.items() if found]
    if lat_slot is not None and lon_slot is not None:
        kinds.insert(0, OUT_OF_BBOX)
    if not kinds or ctx.n == 0:
        return {}
    # An exact share (randomly rounded), so small days still carry their expected count.
    count = min(ctx.n, int(ctx.n * ctx.profile.malformed_share + rng.random()))
    malformed: dict[int, str] = {}
    for i in sorted(rng.sample(range(ctx.n), count)):
        kind = rng.choice(kinds)
        if kind == OUT_OF_BBOX:
            assert lat_slot is not None and lon_slot is not None
            columns[lat_slot.wire][i], columns[lon_slot.wire][i] = _outside_bbox(ctx, i)
        else:
            slot = rng.choice(candidates[kind])
            bad = {
                UNPARSEABLE_NUMBER: BAD_NUMBER,
                MISSING_REQUIRED: None,
                VALUE_NOT_ALLOWED: BAD_VALUE,
                UNPARSEABLE_BOOLEAN: BAD_BOOLEAN,
            }[kind]
            columns[slot.wire][i] = bad
        malformed[i] = kind
    return malformed


def _location_objects(lats: list[Any], lons: list[Any], tokens: set[str]) -> list[Any]:
    """Socrata location objects for rows with both coordinates, as NYC/Chicago send them."""
    return [
        None
        if lat is None or lon is None or lat in tokens or lon in tokens
        else {"latitude": lat, "longitude": lon, "human_address": HUMAN_ADDRESS}
        for lat, lon in zip(lats, lons, strict=True)
    ]


def generate_day(
    contract: Contract,
    day: date,
    *,
    seed: int = 0,
    records: int | None = None,
    profile: SampleProfile | None = None,
) -> GeneratedDay:
    """One local day of records (default: the profile's volume for that weekday).

    `profile` defaults to the contract's sample profile (`sample_profile(contract)`).
    """
    if profile is None:
        profile = sample_profile(contract)
    with gc_paused():
        return _generate_day(contract, profile, day, seed, records)


def _generate_day(
    contract: Contract, profile: SampleProfile, day: date, seed: int, records: int | None
) -> GeneratedDay:
    ctx = _start_day(contract, profile, day, seed, records)
    slots = _slots(contract, profile)
    columns: dict[str, list[Any]] = {}
    for slot in slots:
        values = _values(ctx, slot)
        _blank(ctx, slot, values)
        columns[slot.wire] = values
    malformed = _malform(ctx, slots, columns)
    if profile.location_object:
        lat_wire = next(s.wire for s in slots if s.derive == "latitude")
        lon_wire = next(s.wire for s in slots if s.derive == "longitude")
        tokens = {t for s in slots for t in s.column.null_values}
        columns[profile.location_object] = _location_objects(
            columns[lat_wire], columns[lon_wire], tokens
        )
    for name, value in profile.extra_fields.items():
        columns[name] = [value] * ctx.n
    names = list(columns)
    # None marks an omitted field (portals drop nulls); filtering while building is cheaper
    # than deleting afterwards because about a quarter of the cells are blank.
    rows = [
        {name: value for name, value in zip(names, row, strict=True) if value is not None}
        for row in zip(*columns.values(), strict=True)
    ]
    return GeneratedDay(records=rows, malformed=malformed)


def generate_range(
    contract: Contract,
    start: date,
    end: date,
    *,
    seed: int = 0,
    records_per_day: int | None = None,
    profile: SampleProfile | None = None,
) -> Iterator[GeneratedDay]:
    """Days `start` .. `end` (exclusive), each generated independently of the others."""
    if profile is None:
        profile = sample_profile(contract)
    day = start
    while day < end:
        yield generate_day(contract, day, seed=seed, records=records_per_day, profile=profile)
        day += timedelta(days=1)


def generate_records(
    contract: Contract, n: int, *, day: date, seed: int = 0, profile: SampleProfile | None = None
) -> list[dict[str, Any]]:
    """Exactly `n` records of one day, e.g. for benchmarks."""
    return generate_day(contract, day, seed=seed, records=n, profile=profile).records


def write_ndjson(records: Iterable[dict[str, Any]], path: Path | str) -> int:
    """Write one JSON object per line (UTF-8); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(dumps(record))
            handle.write("\n")
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: one NDJSON file per dataset (`<out>/<dataset_id>.ndjson`) for the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=Path, required=True, help="folder of YAML contracts")
    parser.add_argument("--days", type=int, default=7, help="how many local days")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=date.today(),
        help="first day NOT generated (exclusive, like a data interval's end); default today",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records-per-day", type=int, default=None)
    args = parser.parse_args(argv)
    contracts, errors = load_contracts(args.contracts)
    for error in errors:
        print(f"skipped: {error}", file=sys.stderr)
    start = args.end - timedelta(days=args.days)
    for contract in contracts:
        days = generate_range(
            contract, start, args.end, seed=args.seed, records_per_day=args.records_per_day
        )
        path = args.out / f"{contract.dataset_id}.ndjson"
        count = write_ndjson((r for d in days for r in d.records), path)
        print(f"{contract.dag_id}: {count} records {start}..{args.end} (exclusive) -> {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
