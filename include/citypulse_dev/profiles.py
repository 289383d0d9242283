"""Sample profiles: how the stand-in generator invents a dataset's records.

One YAML file per contract, `samples/<dag_id>.yaml`: the dataset's volume, malformed share,
hotspots, extra wire fields, and under `columns:` each column's hints (choices and weights,
a pattern, an integer range, a derived role, a null share). Development tooling only: the
contracts hold none of it and the product package never reads it.

A contract without a profile still gets records: `SampleProfile()`, i.e. 300 records a day,
1 % malformed, no hotspots, and every column drawn from its role in the contract (key, event
time, coordinates if it names them) or else from its type and allowed values. A profile of a
contract without coordinates places nothing (no hotspots, location object or coordinates).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from citypulse.contracts.contract import Contract

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSample(_Strict):
    """How the generator invents values for one column."""

    choices: list[str] | None = None
    weights: list[float] | None = None
    pattern: str | None = Field(None, description="'#' becomes a digit, '@' an uppercase letter")
    int_range: tuple[int, int] | None = None
    derive: (
        Literal[
            "key",
            "group_id",
            "event_time",
            "event_date",
            "event_time_of_day",
            "event_year",
            "latitude",
            "longitude",
            "later_time",
            "row_id",
        ]
        | None
    ) = None
    null_share: float = Field(0.0, ge=0, le=1)
    as_json_boolean: bool = False


NO_HINTS = ColumnSample()


class Hotspot(_Strict):
    lat: float
    lon: float
    weight: float = Field(1.0, gt=0)
    spread_km: float = Field(0.6, gt=0)


class SampleProfile(_Strict):
    """How the generator shapes a day of records for one dataset, and each column's hints."""

    records_per_day: int = Field(300, ge=0)
    malformed_share: float = Field(0.01, ge=0, le=0.5)
    hotspot_share: float = Field(0.6, ge=0, le=1)
    hotspots: list[Hotspot] = Field(default_factory=list)
    location_object: str | None = Field(
        None, description="wire field holding a Socrata location object built from lat/lon"
    )
    extra_fields: dict[str, str] = Field(
        default_factory=dict, description="constant wire fields the contract does not load"
    )
    columns: dict[str, ColumnSample] = Field(
        default_factory=dict, description="column name -> its hints (absent: none)"
    )

    def column(self, name: str) -> ColumnSample:
        """The hints of one column of the contract; none if the profile names none."""
        return self.columns.get(name, NO_HINTS)


class ProfileError(ValueError):
    """A sample profile is unreadable, invalid or names columns its contract lacks."""


def profile_path(dag_id: str, directory: Path = SAMPLES_DIR) -> Path:
    return directory / f"{dag_id}.yaml"


def load_profile(path: Path) -> SampleProfile:
    """Read and validate one profile file; a ProfileError names the file."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read YAML: {exc}") from exc
    try:
        return SampleProfile.model_validate(raw or {})
    except ValidationError as exc:
        raise ProfileError(f"{path}: {exc}") from None


@lru_cache(maxsize=64)
def _cached(path: Path, _mtime_ns: int, _size: int) -> SampleProfile:
    return load_profile(path)


def sample_profile(contract: Contract, directory: Path = SAMPLES_DIR) -> SampleProfile:
    """The contract's profile from `samples/<dag_id>.yaml`, or the defaults if it has none."""
    path = profile_path(contract.dag_id, directory)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return SampleProfile()
    profile = _cached(path, stat.st_mtime_ns, stat.st_size)
    unknown = sorted(set(profile.columns) - {c.name for c in contract.columns})
    if unknown:
        raise ProfileError(
            f"{path}: columns {unknown} are not columns of contract {contract.dag_id!r}"
        )
    if not contract.mapped:
        placed = sorted(n for n, c in profile.columns.items() if c.derive in _PLACE_ROLES)
        if placed or profile.location_object or profile.hotspots:
            raise ProfileError(
                f"{path}: places records (hotspots, location_object or columns {placed} "
                f"derived as coordinates), but contract {contract.dag_id!r} names no "
                "latitude/longitude"
            )
    return profile


_PLACE_ROLES = ("latitude", "longitude")
