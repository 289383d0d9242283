"""YAML data contracts: one per city dataset, loaded into typed, validated objects.

A contract says everything that differs between datasets: where the data lives, which column
is the key and which the event time, the columns with their PostgreSQL types and what is
expected of the values. A dataset with a place per record also names its coordinate columns
and the city's bounding box (it is then *mapped*: H3 cells per record), and may feed the
cross-city `incidents` view (its `incidents:` mapping), which the hotspot model reads. Any
Socrata dataset is welcome without them: it is loaded, validated, audited and gets its views,
but no cells, no place in `incidents` and no model. How the dev tooling's generator invents
sample records is not part of a contract: that lives in include/citypulse_dev/samples/.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import AfterValidator

from citypulse.contracts.column_types import COLUMN_TYPES, column_type
from citypulse.exceptions import ContractError
from citypulse.settings import CONTRACTS_DIR, IDENTIFIER_PATTERN, SQL_DIR

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
# libyaml's safe loader when available: contracts are parsed on every DAG-file parse.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")

# Columns every typed table carries besides the dataset's own; contracts may not reuse them.
RESERVED_COLUMNS = (
    "event_time",
    "event_time_utc",
    "h3_r7",
    "h3_r8",
    "cp_run_id",
    "cp_loaded_at",
    "cp_deleted_at",
    "cp_origin",
)


def _check_identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value) or len(value) > 63:
        raise ValueError(
            f"{value!r} is not a safe SQL identifier (must match {IDENTIFIER_PATTERN})"
        )
    return value


Identifier = Annotated[str, AfterValidator(_check_identifier)]

# A field name as it may go into SoQL: an identifier (Socrata's own may start with `@` after
# a colon, `:@computed_region_...`) or a system field (`:id`, `:updated_at`). Nothing else:
# a contract's `source` reaches `$where` and `$order` verbatim.
_WIRE_FIELD = re.compile(r"^:?@?[A-Za-z_][A-Za-z0-9_]*$")


def _check_wire_field(value: str) -> str:
    if not _WIRE_FIELD.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Socrata field name (letters, digits and `_`, or a system "
            "field like `:id`)"
        )
    return value


def _check_column_type(value: str) -> str:
    if value not in COLUMN_TYPES:
        raise ValueError(f"{value!r} is not a column type; use one of {sorted(COLUMN_TYPES)}")
    return value


WireField = Annotated[str, AfterValidator(_check_wire_field)]
ColumnTypeName = Annotated[str, AfterValidator(_check_column_type)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    """One column: its wire name, its PostgreSQL type and what its values may be."""

    name: Identifier
    source: WireField | None = Field(None, description="field name on the wire, if not `name`")
    type: ColumnTypeName = Field("text", description="a type of citypulse.contracts.column_types")
    required: bool = False
    values: list[str] | None = Field(None, description="the allowed value set, if closed")
    null_values: list[str] = Field(default_factory=list, description="wire values meaning NULL")
    true_values: list[str] = Field(default_factory=lambda: ["true", "True", "1"])
    false_values: list[str] = Field(default_factory=lambda: ["false", "False", "0"])
    description: str = ""

    @property
    def wire_name(self) -> str:
        return self.source or self.name


class BoundingBox(_Strict):
    """The city's extent; coordinates outside it are rejected, expected for `mostly` of rows."""

    min_lat: float = Field(ge=-90, le=90)
    max_lat: float = Field(ge=-90, le=90)
    min_lon: float = Field(ge=-180, le=180)
    max_lon: float = Field(ge=-180, le=180)
    mostly: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> BoundingBox:
        if self.min_lat >= self.max_lat or self.min_lon >= self.max_lon:
            raise ValueError("min_lat/min_lon must be below max_lat/max_lon")
        return self


class IncidentMapping(_Strict):
    """Which of the dataset's columns feed the unified `incidents` view."""

    category: Identifier
    subcategory: Identifier | None = None
    district: Identifier | None = None


class HolidayCalendar(_Strict):
    """The public holidays a city observes, as the `holidays` package names them."""

    country: str = Field("US", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    subdiv: str | None = Field(None, description="state or province code, e.g. NY")


class ModelSettings(_Strict):
    """How the hotspot model treats the city's data."""

    publication_lag_days: int = Field(
        0,
        ge=0,
        le=60,
        description="days the portal takes to publish a day's records: a forecast made on day "
        "D reads events up to D - lag - 1 only, and is backtested the same way",
    )


class Incremental(_Strict):
    """How a daily run also catches records of earlier days that appeared or changed."""

    change_column: Identifier = Field(
        description="a timestamp column that moves whenever the portal changes a record "
        "(a dataset column like Chicago's updated_on, or one sourced from ':updated_at')"
    )
    lookback_days: int | None = Field(
        None,
        ge=1,
        le=3660,
        description="only for a portal that republishes (and so re-stamps) every row: how "
        "many earlier days a run re-reads; older changes are the partition audit's. Unset: "
        "every record changed since the watermark, whatever its age",
    )

    @property
    def restamps(self) -> bool:
        """Whether the change column moves for every row (it then says nothing per day)."""
        return self.lookback_days is not None


class Reconcile(_Strict):
    """The partition audit: per day of the whole history, the portal's count (and newest
    change) against the warehouse's; days that differ are read again and reconciled.

    Two guards keep a broken portal from deleting the warehouse. `outage_floor`: over the
    days the warehouse holds, the portal must count at least this share of the warehouse's
    rows (its rows plus open rejects) and answer with any record for at least this share of
    the days on which the warehouse holds some; else the audit is refused as an outage
    (retried: it may pass), naming both counts, reading and deleting nothing. A day or a few
    records genuinely deleted stay far above the floor and are repaired; a portal answering
    `200 []` (count 0) or a fraction of the history is not believed. The floor applies again
    to each stretch of days read again: a re-read holding fewer records than this share of
    the days' grouped count changes nothing. `max_delete_share` then bounds what one audit
    may delete (refused, not retried). 0 turns the floor off: when the portal really dropped
    that much history, for one audit.
    """

    every_days: int = Field(7, ge=1, description="run when the window ends on a multiple of this")
    max_repair_days: int = Field(
        62, ge=1, le=3660, description="days read again per audit at most (newest first)"
    )
    max_delete_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description="refuse an audit that would mark more than this share of the table deleted",
    )
    outage_floor: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="refuse an audit as an outage when the portal counts less than this share "
        "of the warehouse's rows over the days it holds, or answers for less than this share "
        "of those days",
    )


class Chart(_Strict):
    """One chart of the city's dashboard in the UI, drawn from one of the city's views.

    `bar`: `value` per `x` (stacked by `series` when set), the `limit` largest `x`;
    `line`: `value` per `x` in `x` order (a date or number); `heatmap`: `value` per `x` and
    `series` (e.g. hour by weekday). Values are summed per `x` (and `series`).
    """

    title: str
    view: Identifier = Field(description="a view of include/citypulse/sql/views/<dag_id>/")
    kind: Literal["bar", "line", "heatmap"]
    x: Identifier
    value: Identifier
    series: Identifier | None = None
    limit: int = Field(15, ge=1, le=200)
    percent: bool = Field(False, description="the value is a share (0..1): shown as a percent")
    note: str = ""

    @model_validator(mode="after")
    def _heatmap_has_rows(self) -> Chart:
        if self.kind == "heatmap" and self.series is None:
            raise ValueError("a heatmap needs `series` (its rows)")
        return self


class Contract(_Strict):
    """A city dataset's data contract."""

    dag_id: Identifier
    title: str
    description: str
    portal: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    dataset_id: str = Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$")
    timezone: str
    start_date: date
    schedule: str = "0 0 * * *"
    owner: str = "citypulse"
    tags: list[str] = Field(default_factory=list)
    table: Identifier
    key: Identifier
    event_time: Identifier
    event_time_of_day: Identifier | None = None
    latitude: Identifier | None = Field(None, description="the records' latitude column, if any")
    longitude: Identifier | None = Field(None, description="their longitude column (with latitude)")
    bbox: BoundingBox | None = Field(None, description="the city's extent (with the coordinates)")
    reject_threshold: float = Field(0.05, ge=0, le=1)
    page_size: int = Field(50_000, ge=1, le=50_000)
    retries: int = Field(3, ge=2, le=10)
    deadline_hours: float = Field(
        6.0, gt=0, description="alert when a daily run has not finished this long after queueing"
    )
    task_timeout_minutes: float = Field(
        120, gt=0, le=24 * 60, description="a task still running this long is stopped (retried)"
    )
    max_window_days: int = Field(
        366,
        ge=1,
        description="the longest window one run may load (params start_date .. end_date); "
        "longer spans are a backfill's",
    )
    api: Literal["soda2", "soda3", "auto"] | None = Field(
        None,
        description="the Socrata API that reads this dataset: soda2 (SODA 2.1, /resource/), "
        "soda3 (/api/v3/views/<id>/query.json, needs an app token) or auto (SODA3 when a token "
        "is configured); unset, CITYPULSE_SODA_API decides (default auto)",
    )
    incremental: Incremental | None = None
    reconcile: Reconcile | None = None
    incidents: IncidentMapping | None = Field(
        None, description="how the records feed `incidents` and the hotspot model (mapped only)"
    )
    holidays: HolidayCalendar = Field(
        default_factory=lambda: HolidayCalendar(),
        description="the city's public holidays (a hotspot model feature)",
    )
    model: ModelSettings = Field(
        default_factory=lambda: ModelSettings(),
        description="the hotspot model's view of the data (its publication lag)",
    )
    columns: list[Column] = Field(min_length=1)
    ignore_fields: list[str] = Field(
        default_factory=list,
        description="wire fields known and deliberately not loaded (no drift warning)",
    )
    dashboard: list[Chart] = Field(
        default_factory=list, description="the city's charts in the UI (CityPulse > Charts)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        parts = value.split()
        if len(parts) != 5 or not all(_CRON_FIELD.fullmatch(p) for p in parts):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"columns repeat: {duplicated}")
        reserved = sorted(set(names) & set(RESERVED_COLUMNS))
        if reserved:
            raise ValueError(f"columns use reserved names: {reserved}")
        by_name = {c.name: c for c in self.columns}
        refs: dict[str, str | None] = {
            "key": self.key,
            "event_time": self.event_time,
            "event_time_of_day": self.event_time_of_day,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }
        if self.incidents is not None:
            refs["incidents.category"] = self.incidents.category
            refs["incidents.subcategory"] = self.incidents.subcategory
            refs["incidents.district"] = self.incidents.district
        for field, column in refs.items():
            if column is not None and column not in by_name:
                raise ValueError(f"{field} names column {column!r}, which is not in columns")
        if not column_type(by_name[self.event_time].type).local:
            raise ValueError("event_time must name a timestamp or date column")
        if self.incremental is not None:
            change = by_name.get(self.incremental.change_column)
            if change is None or column_type(change.type).family != "timestamp":
                raise ValueError(
                    "incremental.change_column must name a timestamp or timestamptz column"
                )
        self._check_place(by_name)
        for i, chart in enumerate(self.dashboard):
            if not (SQL_DIR / "views" / self.dag_id / f"{chart.view}.sql").is_file():
                raise ValueError(
                    f"dashboard[{i}] ({chart.title}) draws view {chart.view!r}, which has no "
                    f"file include/citypulse/sql/views/{self.dag_id}/{chart.view}.sql"
                )
        return self

    def _check_place(self, by_name: dict[str, Column]) -> None:
        """Coordinates come as a pair with the bounding box; `incidents` needs them."""
        given = [f for f in ("latitude", "longitude", "bbox") if getattr(self, f) is not None]
        if given and len(given) < 3:
            missing = sorted({"latitude", "longitude", "bbox"} - set(given))
            raise ValueError(
                f"{', '.join(given)} given without {', '.join(missing)}: a mapped dataset names "
                "latitude, longitude and bbox; a dataset without a place names none of them"
            )
        if self.incidents is not None and not given:
            raise ValueError(
                "incidents needs latitude, longitude and bbox: `incidents` and the hotspot "
                "model place every record on the map"
            )
        for coordinate in (self.latitude, self.longitude):
            if coordinate is not None and column_type(by_name[coordinate].type).family != "number":
                raise ValueError(f"{coordinate} must be a 'double precision' column")

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def mapped(self) -> bool:
        """Whether the records have a place: coordinate columns, a bbox, H3 cells."""
        return self.latitude is not None

    @property
    def modelled(self) -> bool:
        """Whether the dataset feeds `incidents`, `hex_daily_counts` and the hotspot model."""
        return self.incidents is not None

    @property
    def system_fields(self) -> bool:
        """Whether any column comes from a Socrata system field (`:id`, `:updated_at`)."""
        return any(c.wire_name.startswith(":") for c in self.columns)

    @property
    def change_column(self) -> Column | None:
        return self.column(self.incremental.change_column) if self.incremental else None

    @property
    def key_column(self) -> Column:
        return self.column(self.key)

    @property
    def event_column(self) -> Column:
        return self.column(self.event_time)


# Keys contracts used to hold (top level, or per column) and where they went: a contract
# still carrying one is told so.
_MOVED_KEYS = {
    "sample": "sample settings are no longer part of a contract: they live in the dev "
    "tooling's sample profiles, include/citypulse_dev/samples/<dag_id>.yaml",
}


def _moved_key(loc: tuple[int | str, ...]) -> str | None:
    """The moved key an unknown-field error is about (`sample`, `columns[3].sample`), if any."""
    if len(loc) == 1 or (len(loc) == 3 and loc[0] == "columns" and isinstance(loc[1], int)):
        key = loc[-1]
        return key if isinstance(key, str) and key in _MOVED_KEYS else None
    return None


def _describe(exc: ValidationError, raw: Any) -> str:
    """Name each failing field the way a person reads the YAML: `columns[3] (status).type`."""
    problems = []
    moved: dict[str, str] = {}
    for error in exc.errors():
        key = _moved_key(error["loc"]) if error["type"] == "extra_forbidden" else None
        if key is not None:
            moved[key] = _MOVED_KEYS[key]
        parts: list[str] = []
        node = raw
        for loc in error["loc"]:
            if isinstance(loc, int):
                label = f"[{loc}]"
                if isinstance(node, list) and loc < len(node):
                    node = node[loc]
                    if isinstance(node, dict) and "name" in node:
                        label += f" ({node['name']})"
                parts.append(label)
            else:
                parts.append(("." if parts else "") + str(loc))
                node = node.get(loc) if isinstance(node, dict) else None
        where = "".join(parts) or "(top level)"
        problems.append(f"field '{where}': {error['msg']}")
    dag_id = raw.get("dag_id") if isinstance(raw, dict) else None
    if isinstance(dag_id, str):
        moved = {k: note.replace("<dag_id>", dag_id) for k, note in moved.items()}
    return "; ".join(problems + [f"({note})" for note in moved.values()])


def load_contract(path: Path) -> Contract:
    """Read and validate one contract; a ContractError names the file and the field."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: a contract must be a YAML mapping")
    try:
        return Contract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(f"{path}: {_describe(exc, raw)}") from None


def load_contracts(
    directory: Path = CONTRACTS_DIR,
) -> tuple[list[Contract], list[ContractError]]:
    """All contracts of a folder in a stable order, and the errors of those that failed."""
    errors: list[ContractError] = []
    loaded: list[tuple[Path, Contract]] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            loaded.append((path, load_contract(path)))
        except ContractError as exc:
            errors.append(exc)
    # Two contracts of one DAG id, table or dataset would write one table twice over:
    # neither is trusted, and the error names both files.
    clashes: dict[tuple[Path, ...], list[str]] = {}
    for what, value_of in _UNIQUE_PER_CONTRACT.items():
        claimed: dict[str, list[Path]] = {}
        for path, contract in loaded:
            claimed.setdefault(value_of(contract), []).append(path)
        for value, paths in claimed.items():
            if len(paths) > 1:
                clashes.setdefault(tuple(paths), []).append(f"{what} {value!r}")
    for group, shared in clashes.items():
        files = " and ".join(str(p) for p in group)
        errors.append(ContractError(f"{files}: each claims {', '.join(shared)}"))
    clashing = {path for group in clashes for path in group}
    return [contract for path, contract in loaded if path not in clashing], errors


# What no two contracts may share, and how to read it off a contract.
_UNIQUE_PER_CONTRACT: dict[str, Any] = {
    "dag_id": lambda c: c.dag_id,
    "table": lambda c: c.table,
    "dataset": lambda c: f"{c.portal}/{c.dataset_id}",
}


def contract_by_id(dag_id: str, directory: Path = CONTRACTS_DIR) -> Contract:
    """The contract of one DAG, read fresh (tasks run in other processes than the parser)."""
    contracts, _ = load_contracts(directory)
    for contract in contracts:
        if contract.dag_id == dag_id:
            return contract
    raise ContractError(f"no valid contract with dag_id {dag_id!r} in {directory}")
