"""A draft contract from what a portal says of a dataset: pure guesses, each with its reason.

`draft_contract(metadata, profile, options)` turns the view metadata (`/api/views/<id>.json`)
and a `Profile` (the answers of a few SoQL aggregates, see citypulse.portal.profile) into a
`Draft`: the contract's fields in YAML order, every guess with the comment that explains it,
and what a person must still review. No I/O here; `contracts.draft` writes the YAML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from citypulse.contracts.column_types import DECIMAL_PATTERN, INTEGER_PATTERN
from citypulse.contracts.contract import RESERVED_COLUMNS
from citypulse.portal.metadata import ViewColumn, ViewMetadata
from citypulse.settings import IDENTIFIER_PATTERN

_INTEGER = re.compile(INTEGER_PATTERN)
_DECIMAL = re.compile(DECIMAL_PATTERN)
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_CLOCK = re.compile(r"^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$")

# Socrata types of geometry: a contract reads plain columns, so these are left out.
GEOMETRY_TYPES = frozenset(
    {"location", "point", "multipoint", "line", "multiline", "polygon", "multipolygon"}
)
LATITUDE_NAMES = ("latitude", "lat", "y_lat", "point_y")
LONGITUDE_NAMES = ("longitude", "lon", "lng", "long", "x_long", "point_x")
# Name hints, strongest first; a field name containing one ranks above one that does not.
KEY_HINTS = (r"^(unique_)?(id|key)$", r"_(id|key)$", r"(number|num|no)$")
EVENT_HINTS = (r"creat|report|open|receiv|request|occur|incident|filed|issued|stop", r"date|time")
CHANGE_NAME = re.compile(
    r"^(last_)?(updated?|modified|changed|edited)(_(on|at|date|time|datetime))?$"
    r"|^(date|time)_(last_)?(updated|modified|changed|edited)$"
)
# A column's keys in the order the hand-written contracts write them.
SPEC_ORDER = ("name", "source", "type", "required", "values", "null_values", "true_values",
              "false_values", "description")  # fmt: skip
INCIDENT_HINTS = {
    "category": r"type|categ|offense|complaint|violation|crime|class",
    "subcategory": r"descri|subcat|sub_type|detail",
    "district": r"borough|district|precinct|subagency|ward|beat|neighbo|area|zone",
}
BOOLEAN_WORDS = ({"Yes", "No"}, {"Y", "N"}, {"YES", "NO"}, {"true", "false"}, {"TRUE", "FALSE"})

# A closed value set: at most this many values, each seen this many times on average.
MAX_SET_VALUES = 12
MIN_ROWS_PER_VALUE = 20
# The event column may lack a value in at most this share of rows.
MAX_EVENT_NULL_SHARE = 0.01
EARLIEST_PLAUSIBLE = date(1900, 1, 1)
# Bounding box: the trimmed quantiles (each side), how far beyond them (a share of their
# span) the box reaches for the real extremes, and the margin around what it takes in.
TRIM_SHARE = 0.005
BOX_REACH_SHARE = 0.25
BOX_MARGIN = 0.01
# Change capture: the portal re-stamps every row when this share of the rows whose event is
# over a week old was stamped within a day of the newest stamp.
RESTAMP_SHARE = 0.5
LOOKBACK_DAYS = 7
INTEGER_HEADROOM = 2**31 // 8  # integers beyond this magnitude get a bigint (room to grow)

ROW_ID, ROW_ID_SOURCE = "row_id", ":id"
CHANGED_AT, CHANGED_AT_SOURCE = "source_updated_at", ":updated_at"


@dataclass(frozen=True)
class FieldFigures:
    """What the portal answered about one field (cachedContents, else our own queries)."""

    non_null: int
    minimum: str | None = None
    maximum: str | None = None
    distinct: int | None = None  # None: not known
    # Every value with its count, most frequent first, when the field has few (else None).
    values: tuple[tuple[str, int], ...] | None = None


class Spread(NamedTuple):
    """A coordinate's values: trimmed low and high quantiles, smallest and largest."""

    low: float
    high: float
    smallest: float
    largest: float


@dataclass(frozen=True)
class Profile:
    """The answers a scaffold is drawn from (citypulse.portal.profile asks the questions)."""

    rows: int
    fields: Mapping[str, FieldFigures]
    sample: Sequence[Mapping[str, Any]]  # a few records, system fields included
    # Coordinate field -> its trimmed quantiles and extremes, zeros left out.
    quantiles: Mapping[str, Spread] = field(default_factory=dict)
    restamped_share: float | None = None  # None: not measured
    queries: int = 0

    def figures(self, name: str) -> FieldFigures:
        return self.fields.get(name) or FieldFigures(non_null=0)

    def sampled(self, name: str) -> list[str]:
        return [str(r[name]) for r in self.sample if r.get(name) not in (None, "")]


@dataclass(frozen=True)
class Options:
    portal: str
    dataset_id: str
    dag_id: str | None = None
    timezone: str | None = None
    today: date = field(default_factory=date.today)


@dataclass
class Entry:
    """One line of the draft: a contract key, its value and why (the YAML comment)."""

    key: str
    value: Any
    why: str = ""


@dataclass
class Draft:
    """A draft contract: top-level entries in order, columns with their reasons, and what a
    person must review before relying on it."""

    header: list[str]
    entries: list[Entry]
    columns: list[Entry]  # key: the column name, value: its mapping
    review: list[str]

    def value(self, key: str) -> Any:
        return next(e.value for e in self.entries if e.key == key)

    def as_dict(self) -> dict[str, Any]:
        data = {e.key: e.value for e in self.entries}
        data["columns"] = [c.value for c in self.columns]
        return data


@dataclass(frozen=True)
class Guess:
    """A chosen field (None: nothing fits) and why."""

    name: str | None
    why: str


# --- Columns ---------------------------------------------------------------------------------


def column_name(field_name: str) -> str:
    """A safe column name for a wire field (lower-case identifier, not a reserved one)."""
    name = re.sub(r"[^a-z0-9_]+", "_", field_name.lower()).strip("_") or "field"
    if not _IDENTIFIER.fullmatch(name):
        name = f"f_{name}"
    if name in RESERVED_COLUMNS:
        name = f"{name}_source"
    return name[:63]


def coordinate_fields(metadata: ViewMetadata) -> tuple[str, str] | None:
    """The latitude and longitude fields (plain number or text columns), if both exist."""
    usable = {c.field_name: c for c in metadata.data_columns if c.data_type in ("number", "text")}
    latitude = next((n for n in LATITUDE_NAMES if n in usable), None)
    longitude = next((n for n in LONGITUDE_NAMES if n in usable), None)
    return (latitude, longitude) if latitude and longitude else None


def numeric_values(values: Sequence[str]) -> list[float]:
    out = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def _number_type(column: ViewColumn, profile: Profile, is_key: bool) -> tuple[str, str]:
    """integer, bigint or double precision by the values seen (sample, smallest, largest)."""
    figures = profile.figures(column.field_name)
    seen = profile.sampled(column.field_name) + [
        v for v in (figures.minimum, figures.maximum) if v is not None
    ]
    if not seen:
        return "double precision", "no value seen: double precision holds any number"
    if not all(_INTEGER.fullmatch(v) for v in seen):
        fraction = next(v for v in seen if not _INTEGER.fullmatch(v))
        return "double precision", f"values with a fraction ({fraction})"
    largest = max(abs(int(v)) for v in seen)
    if is_key or re.search(KEY_HINTS[1], column.field_name) or column.field_name == "id":
        return "bigint", "whole numbers identifying records: bigint leaves room to grow"
    if largest > INTEGER_HEADROOM:
        return "bigint", f"whole numbers up to {largest}: bigint leaves room to grow"
    return "integer", f"whole numbers up to {largest}"


def _boolean_words(figures: FieldFigures) -> tuple[list[str], list[str]] | None:
    """(true values, false values) when a text field holds only two flag words."""
    if figures.values is None:
        return None
    seen = {v for v, _ in figures.values}
    for words in BOOLEAN_WORDS:
        if seen and seen <= words:
            true = sorted(w for w in words if w.lower() in ("yes", "y", "true"))
            return true, sorted(words - set(true))
    return None


def _text_column(column: ViewColumn, profile: Profile, spec: dict[str, Any]) -> str:
    """Type a text field (flags, text coordinates, closed sets): returns the reason."""
    figures = profile.figures(column.field_name)
    flags = _boolean_words(figures)
    if flags is not None:
        spec.update(type="boolean", true_values=flags[0], false_values=flags[1])
        return f"text holding only {'/'.join(flags[0] + flags[1])}: a flag"
    if column.field_name in LATITUDE_NAMES + LONGITUDE_NAMES:
        sampled = profile.sampled(column.field_name)
        words = sorted({v for v in sampled if not _DECIMAL.fullmatch(v)})
        if sampled and len(words) <= 3 and len(numeric_values(sampled)) >= len(sampled) / 2:
            spec["type"] = "double precision"
            if words:
                spec["null_values"] = words
            return "a coordinate sent as text" + (f"; {words} read as NULL" if words else "")
    values = figures.values
    if (
        values is not None
        and 2 <= len(values) <= MAX_SET_VALUES
        and figures.non_null >= MIN_ROWS_PER_VALUE * len(values)
    ):
        spec["values"] = [v for v, _ in values]
        return f"{len(values)} values over {figures.non_null} rows: a closed set (REVIEW)"
    return ""


def column_spec(column: ViewColumn, profile: Profile, is_key: bool) -> Entry:
    """One contract column for a data field, with why it was typed so."""
    name = column_name(column.field_name)
    spec: dict[str, Any] = {"name": name}
    if name != column.field_name:
        spec["source"] = column.field_name
    kind, family = column.data_type, column.family
    why = ""
    if family == "number":
        spec["type"], why = _number_type(column, profile, is_key)
    elif family == "boolean":
        spec["type"], why = "boolean", kind
    elif kind == "fixed_timestamp":
        spec["type"], why = "timestamptz", "fixed_timestamp: an instant"
    elif family == "timestamp":
        spec["type"], why = "timestamp", f"{kind}: the city's wall time"
    elif kind == "text":
        why = _text_column(column, profile, spec)
    else:
        why = f"Socrata type {kind} read as text"
    figures = profile.figures(column.field_name)
    if profile.rows and figures.non_null == profile.rows:
        spec["required"] = True
    if spec.get("type") == "text":
        del spec["type"]
    return Entry(name, {k: spec[k] for k in SPEC_ORDER if k in spec}, why)


# --- Key, event, change ----------------------------------------------------------------------


def _hint_rank(name: str, hints: Sequence[str]) -> int:
    return next((i for i, hint in enumerate(hints) if re.search(hint, name)), len(hints))


def guess_key(metadata: ViewMetadata, profile: Profile) -> Guess:
    """The row identifier; else a number or text field with a distinct value in every row;
    else Socrata's own row id (None)."""
    names = {c.field_name for c in metadata.data_columns}
    if metadata.row_identifier in names:
        return Guess(metadata.row_identifier, "the portal's row identifier")
    unique = [
        c
        for c in metadata.data_columns
        if c.data_type in ("number", "text")
        and profile.rows > 0
        and profile.figures(c.field_name).non_null == profile.rows
        and profile.figures(c.field_name).distinct == profile.rows
    ]
    if unique:
        best = min(
            unique,
            key=lambda c: (
                _hint_rank(c.field_name, KEY_HINTS),
                c.data_type != "number",
                c.position,
            ),
        )
        return Guess(best.field_name, f"a distinct value in each of the {profile.rows} rows")
    return Guess(None, "no field is distinct in every row: Socrata's own row id `:id`")


def _day(value: str | None) -> date | None:
    try:
        return datetime.fromisoformat(str(value)[:10]).date() if value else None
    except ValueError:
        return None


def _plausible(figures: FieldFigures, today: date) -> bool:
    first, last = _day(figures.minimum), _day(figures.maximum)
    return bool(first and last and first >= EARLIEST_PLAUSIBLE and last <= today + timedelta(2))


def _dates(metadata: ViewMetadata) -> list[ViewColumn]:
    # Wall-time dates (an event is a local day's), under any of their Socrata names.
    columns = metadata.data_columns
    return [c for c in columns if c.family == "timestamp" and c.data_type != "fixed_timestamp"]


def guess_change(metadata: ViewMetadata, profile: Profile, today: date) -> Guess:
    """A date field named as a change time (updated_on...), else Socrata's `:updated_at`."""
    for column in _dates(metadata):
        figures = profile.figures(column.field_name)
        if CHANGE_NAME.search(column.field_name) and _plausible(figures, today):
            return Guess(column.field_name, "its name says it moves when a record changes")
    return Guess(None, "no change column: Socrata's own `:updated_at` moves with every change")


def guess_event(metadata: ViewMetadata, profile: Profile, today: date) -> Guess:
    """A date field with few nulls and a plausible range (not the change column), ranked by
    nulls, then by a name that says when the record happened, then by position."""
    change = guess_change(metadata, profile, today).name
    candidates = []
    for column in _dates(metadata):
        figures = profile.figures(column.field_name)
        nulls = profile.rows - figures.non_null
        if (
            column.field_name != change
            and not CHANGE_NAME.search(column.field_name)
            and profile.rows
            and nulls / profile.rows <= MAX_EVENT_NULL_SHARE
            and _plausible(figures, today)
        ):
            rank = (nulls > 0, _hint_rank(column.field_name, EVENT_HINTS), column.position)
            candidates.append((rank, column, figures, nulls))
    if not candidates:
        return Guess(None, "no date field with few nulls and a plausible range")
    _, column, figures, nulls = min(candidates, key=lambda c: c[0])
    return Guess(
        column.field_name,
        f"{nulls} null(s) in {profile.rows} rows, {figures.minimum} .. {figures.maximum}",
    )


def guess_time_of_day(metadata: ViewMetadata, profile: Profile, event: str) -> Guess:
    """A text field of clock times when the event column holds only midnights."""
    stamps = profile.sampled(event)
    if not stamps or any(s[10:] not in ("", "T00:00:00", "T00:00:00.000") for s in stamps):
        return Guess(None, "")
    for column in metadata.data_columns:
        sampled = profile.sampled(column.field_name)
        if column.data_type == "text" and sampled and all(_CLOCK.fullmatch(v) for v in sampled):
            return Guess(column.field_name, f"{event} holds only midnights; this field the time")
    return Guess(None, "")


# --- Bounding box, timezone, incidents --------------------------------------------------------


def bounding_box(profile: Profile, coordinates: tuple[str, str]) -> tuple[dict[str, float], str]:
    """The box of the trimmed coordinate quantiles, reaching out to the real extremes when
    they lie within a quarter of the span beyond (a city's edges) but not farther (outliers,
    points mis-geocoded far away), with a margin, rounded outward to 0.01 degree."""
    box: dict[str, float] = {}
    for field_name, axis in zip(coordinates, ("lat", "lon"), strict=True):
        low, high, smallest, largest = profile.quantiles[field_name]
        reach = (high - low) * BOX_REACH_SHARE
        box[f"min_{axis}"] = math.floor((max(smallest, low - reach) - BOX_MARGIN) * 100) / 100
        box[f"max_{axis}"] = math.ceil((min(largest, high + reach) + BOX_MARGIN) * 100) / 100
    box["mostly"] = 0.95
    return box, (
        f"the coordinates' {TRIM_SHARE:.1%}..{1 - TRIM_SHARE:.1%} quantiles (0 left out), out "
        f"to the extremes within {BOX_REACH_SHARE:.0%} of their span beyond"
    )


def timezone_at(latitude: float, longitude: float) -> str | None:
    """The IANA time zone at a point (timezonefinder's offline polygons)."""
    from timezonefinder import TimezoneFinder

    found = TimezoneFinder().timezone_at(lat=latitude, lng=longitude)
    return str(found) if found else None


def guess_incidents(columns: Sequence[Entry], key: str) -> dict[str, str]:
    """Which text columns might feed the unified incidents view, by name (always REVIEW)."""
    texts = [
        c.key for c in columns if "type" not in c.value and c.key != key and "source" not in c.value
    ]
    mapping: dict[str, str] = {}
    for role, hint in INCIDENT_HINTS.items():
        found = next((n for n in texts if re.search(hint, n) and n not in mapping.values()), None)
        if found:
            mapping[role] = found
    if "category" not in mapping and texts:
        mapping["category"] = next(n for n in texts if n not in mapping.values())
    return mapping


def dag_id_for(name: str) -> str:
    """A DAG id from the dataset's name (`NYC 311 Requests` -> `nyc_311_requests`)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40].strip("_") or "dataset"
    return slug if slug[0].isalpha() else f"d_{slug}"


# --- The draft ---------------------------------------------------------------------------------


def draft_contract(metadata: ViewMetadata, profile: Profile, options: Options) -> Draft:
    """The draft contract of a dataset; raises ValueError when no event column can be found
    (a contract needs one) or no timezone is given nor found."""
    key = guess_key(metadata, profile)
    change = guess_change(metadata, profile, options.today)
    event = guess_event(metadata, profile, options.today)
    if event.name is None:
        raise ValueError(f"{options.dataset_id}: {event.why}; a contract needs an event column")
    coordinates = coordinate_fields(metadata)
    review: list[str] = []

    columns, ignored = _columns(metadata, profile, key.name)
    if key.name is None:
        columns.insert(0, Entry(ROW_ID, {"name": ROW_ID, "source": ROW_ID_SOURCE,
                                         "required": True}, key.why))  # fmt: skip
    if change.name is None:
        stamp = {"name": CHANGED_AT, "source": CHANGED_AT_SOURCE, "type": "timestamptz",
                 "description": "Socrata's last-change time"}  # fmt: skip
        columns.append(Entry(CHANGED_AT, stamp, "Socrata's own change stamp"))
    name_of = {c.field_name: column_name(c.field_name) for c in metadata.data_columns}
    key_name = name_of[key.name] if key.name else ROW_ID

    dag_id = options.dag_id or dag_id_for(metadata.name)
    event_name = name_of[event.name]
    first = _day(profile.figures(event.name).minimum) or options.today
    entries = [
        Entry("dag_id", dag_id, "" if options.dag_id else "from the dataset's name"),
        Entry("title", metadata.name),
        Entry("description", f"{metadata.name} (Socrata {metadata.dataset_id}).\n"),
        Entry("portal", options.portal),
        Entry("dataset_id", options.dataset_id),
    ]
    entries += _place(profile, coordinates, options, review)
    entries += [
        Entry("start_date", date(first.year, 1, 1), f"the earliest {event.name} is {first}"),
        Entry("tags", [options.portal.split(".")[-2], "socrata"]),
        Entry("table", dag_id),
        Entry("key", key_name, key.why),
        Entry("event_time", event_name, event.why),
    ]
    time_of_day = guess_time_of_day(metadata, profile, event.name)
    if time_of_day.name:
        entries.append(Entry("event_time_of_day", name_of[time_of_day.name], time_of_day.why))
    if coordinates is not None:
        entries += [
            Entry("latitude", name_of[coordinates[0]]),
            Entry("longitude", name_of[coordinates[1]]),
        ]
        box, why = bounding_box(profile, coordinates)
        entries.append(Entry("bbox", box, why))
        incidents = guess_incidents(columns, key_name)
        entries.append(Entry("incidents", incidents, "REVIEW: guessed from the column names"))
        review.append(f"incidents: {incidents} was guessed from column names")
    else:  # a dataset without a place: ingested, audited and viewed; not mapped or modelled
        review.append(
            "no latitude/longitude columns found: the draft has no place (no map, no model)"
        )
    entries.append(Entry("holidays", {"country": "US"}, "REVIEW: add subdiv (state)"))
    review.append("holidays: the country (and state, `subdiv`) the city observes")
    if ignored:
        entries.append(Entry("ignore_fields", ignored, "geometry objects; not loaded"))
    entries.append(_incremental(change, name_of, profile))
    entries.append(Entry("reconcile", {"every_days": 7}, "weekly partition audit"))
    review.append("values: closed sets from the rows profiled; a new value will be rejected")
    header = [
        f"{metadata.name} (Socrata {metadata.dataset_id}), drafted by `citypulse contract init`",
        f"from the portal's view metadata and {profile.queries} profile queries over "
        f"{profile.rows} rows. Each guess says why; review those marked REVIEW.",
    ]
    return Draft(header, entries, columns, review)


def _columns(
    metadata: ViewMetadata, profile: Profile, key: str | None
) -> tuple[list[Entry], list[str]]:
    """The data columns typed, and the geometry fields left out."""
    columns: list[Entry] = []
    ignored: list[str] = []
    for column in metadata.data_columns:
        if column.data_type in GEOMETRY_TYPES:
            ignored.append(column.field_name)
            continue
        columns.append(column_spec(column, profile, column.field_name == key))
    return columns, ignored


def _place(
    profile: Profile, coordinates: tuple[str, str] | None, options: Options, review: list[str]
) -> list[Entry]:
    """The timezone: given, or found at the centre of the coordinates."""
    if options.timezone:
        return [Entry("timezone", options.timezone, "given")]
    if coordinates is None or not all(c in profile.quantiles for c in coordinates):
        raise ValueError("no coordinates to find the timezone from: pass --timezone")
    latitude, longitude = (profile.quantiles[c] for c in coordinates)
    found = timezone_at((latitude.low + latitude.high) / 2, (longitude.low + longitude.high) / 2)
    if found is None:
        raise ValueError("no timezone at the centre of the coordinates: pass --timezone")
    review.append(f"timezone: {found} was found at the centre of the coordinates")
    return [Entry("timezone", found, "REVIEW: found at the centre of the coordinates")]


def _incremental(change: Guess, name_of: Mapping[str, str], profile: Profile) -> Entry:
    column = name_of[change.name] if change.name else CHANGED_AT
    spec: dict[str, Any] = {"change_column": column}
    why = change.why
    share = profile.restamped_share
    if share is not None and share >= RESTAMP_SHARE:
        spec["lookback_days"] = LOOKBACK_DAYS
        why += f"; {share:.0%} of rows over a week old were re-stamped within a day"
    return Entry("incremental", spec, why)
