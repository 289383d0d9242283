"""What the DAG files take from the data contracts, cached between parses of `dags/`.

Validating the YAML contracts (pydantic models) costs more than building the DAGs, so a parse
reads the plain `CityDagSpec`s from a cache file and validates only when a contract file or
the code that reads it changed. Tasks never use the cache: they validate their contract.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from citypulse.exceptions import ContractError
from citypulse.settings import CONTRACTS_DIR, PARSE_CACHE_FILE

if TYPE_CHECKING:
    from citypulse.contracts.contract import Contract

# The modules whose code decides what a cached spec holds: editing one invalidates the cache.
_PACKAGE = Path(__file__).resolve().parents[1]
_CACHE_CODE = (
    _PACKAGE / "contracts" / "contract.py",
    _PACKAGE / "contracts" / "column_types.py",
    Path(__file__),
    _PACKAGE / "settings.py",
    _PACKAGE / "exceptions.py",
)
_CACHE_FORMAT = "city-dag-specs/2"
log = logging.getLogger(__name__)


class ColumnDoc(NamedTuple):
    """A contract column as the DAG's documentation lists it."""

    name: str
    type: str
    required: bool
    description: str


class CityDagSpec(NamedTuple):
    """What a city DAG takes from its contract: plain data, so that parses can cache it."""

    dag_id: str
    title: str
    description: str
    portal: str
    dataset_id: str
    timezone: str
    start_date: date
    schedule: str
    owner: str
    tags: tuple[str, ...]
    table: str
    key: str
    event_time: str
    event_time_of_day: str | None
    reject_threshold: float
    page_size: int
    retries: int
    deadline_hours: float
    task_timeout_minutes: float
    max_window_days: int
    modelled: bool  # feeds `incidents` and the hotspot model (has coordinates and a mapping)
    columns: tuple[ColumnDoc, ...]

    @classmethod
    def of(cls, contract: Contract) -> CityDagSpec:
        """The spec of a validated contract."""
        fields = {name: getattr(contract, name) for name in cls._fields}
        fields["tags"] = tuple(contract.tags)
        fields["columns"] = tuple(
            ColumnDoc(c.name, c.type, c.required, c.description) for c in contract.columns
        )
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "start_date": self.start_date.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CityDagSpec:
        return cls(
            **{
                **data,
                "start_date": date.fromisoformat(data["start_date"]),
                "tags": tuple(data["tags"]),
                "columns": tuple(ColumnDoc(*column) for column in data["columns"]),
            }
        )


def city_dag_specs(
    directory: Path = CONTRACTS_DIR, cache_file: Path | None = PARSE_CACHE_FILE
) -> tuple[list[CityDagSpec], list[ContractError]]:
    """The specs of a folder's valid contracts and the errors of the others.

    The same outcome as `contracts.load_contracts`, read from `cache_file` when neither the
    contract files nor the code that validates them changed since it was written. A missing,
    stale, corrupt or unwritable cache only means validating afresh; None disables it.
    """
    key = _cache_key(directory)
    cached = _read_cache(cache_file, key) if cache_file else None
    if cached is not None:
        return cached
    # Imported only on a miss: building the pydantic models is most of a parse's cost.
    from citypulse.contracts.contract import load_contracts

    contracts, errors = load_contracts(directory)
    specs = [CityDagSpec.of(contract) for contract in contracts]
    if cache_file:
        _write_cache(cache_file, key, specs, errors)
    return specs, errors


def _cache_key(directory: Path) -> str:
    """A digest of the contract files' names and contents and of the code that reads them."""
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\0{os.path.abspath(directory)}".encode())
    for path in [*_CACHE_CODE, *sorted(directory.glob("*.yaml"))]:
        try:
            content = path.read_bytes()
        except OSError as exc:  # still a key: the error changes when the file is fixed
            content = repr(exc).encode()
        digest.update(f"\0{path.name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def _read_cache(cache_file: Path, key: str) -> tuple[list[CityDagSpec], list[ContractError]] | None:
    try:
        data = json.loads(cache_file.read_bytes())
        if data["key"] != key:
            return None
        specs = [CityDagSpec.from_json(spec) for spec in data["specs"]]
        return specs, [ContractError(message) for message in data["errors"]]
    except Exception:  # missing or unreadable: whatever is wrong, validating afresh is right
        return None


def _write_cache(
    cache_file: Path, key: str, specs: list[CityDagSpec], errors: list[ContractError]
) -> None:
    payload = {
        "key": key,
        "specs": [spec.to_json() for spec in specs],
        "errors": [str(error) for error in errors],
    }
    # Parses run in parallel processes: each writes its own file and renames it into place.
    partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(partial, cache_file)
    except OSError as exc:
        log.debug("cannot write the parse cache %s: %s", cache_file, exc)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
