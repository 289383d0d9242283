"""The model registry in PostgreSQL (`model_runs`) and the artifacts in the storage root.

Every evaluated model gets a row; learned ones also an artifact under the key
`models/<city>/<model_kind>/v<id>/` of the storage root (`CITYPULSE_STORAGE_URL`; the row id
is the version), so `predict` loads what `train` saved whichever worker either ran on.
`promotion` decides which model a city publishes (the candidate or its run's best baseline);
this module records the decision, the gate figures and the published ("promoted") row.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json

from citypulse.settings import SCHEMA
from citypulse.storage import MODELS_PREFIX, StorageRoot
from citypulse.warehouse.sqlfiles import render
from citypulse.warehouse.tables import DDL_LOCK
from citypulse.warehouse.types import Cursor

log = logging.getLogger(__name__)

ARTIFACT_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class ModelRun:
    """One evaluated model of a retrain run, as registered."""

    dag_run_id: str
    city: str
    resolution: int
    model_kind: str
    role: str  # baseline | reference | candidate
    params: dict[str, Any]
    windows: dict[str, Any]  # Windows.as_dict()
    label_threshold: float
    metrics: dict[str, Any]
    as_of: date | None = None


@dataclass(frozen=True)
class Champion:
    id: int
    dag_run_id: str
    model_kind: str
    role: str
    artifact_path: str | None
    metrics: dict[str, Any]
    label_threshold: float
    params: dict[str, Any]


def ensure_registry(cur: Cursor) -> None:
    """Create the registry tables and the map view if missing (idempotent, serialised)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
    cur.execute(render("model/10_registry.sql", schema_name=sql.Literal(SCHEMA)))


def lock_city(cur: Cursor, city: str) -> None:
    """Serialise registrations of one city until the transaction ends."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"citypulse.model.{city}",))


def record(cur: Cursor, run: ModelRun) -> int:
    """Insert (or, for a retried task, update) a model's row; returns its id."""
    windows = run.windows
    cur.execute(
        render("model/upsert_run.sql"),
        {
            "dag_run_id": run.dag_run_id,
            "city": run.city,
            "resolution": run.resolution,
            "model_kind": run.model_kind,
            "role": run.role,
            "params": Json(run.params),
            "train_start": date.fromisoformat(windows["train_start"]),
            "train_end": date.fromisoformat(windows["train_end"]),
            "test_start": date.fromisoformat(windows["test_start"]),
            "test_end": date.fromisoformat(windows["test_end"]),
            "label_threshold": run.label_threshold,
            "metrics": Json(run.metrics),
            "as_of": run.as_of,
            "publication_lag_days": int(windows.get("lag_days", 0)),
        },
    )
    return int(cur.fetchone()[0])


def artifact_key(city: str, model_kind: str, run_id: int) -> str:
    """The key (under the storage root) of a model's artifact folder."""
    return f"{MODELS_PREFIX}/{city}/{model_kind}/v{run_id}"


def save_artifact(
    cur: Cursor,
    run_id: int,
    run: ModelRun,
    estimator: Any,
    metadata: dict[str, Any],
    root: StorageRoot | None = None,
) -> str:
    """Write the fitted estimator and its metadata under the versioned key; note the key."""
    import joblib

    root = root or StorageRoot.configured()
    key = artifact_key(run.city, run.model_kind, run_id)
    with root.open_write(f"{key}/{ARTIFACT_FILE}") as handle:
        joblib.dump(estimator, handle)
    described = {"model_run_id": run_id, **metadata}
    with root.open_write(f"{key}/{METADATA_FILE}") as handle:
        handle.write((json.dumps(described, indent=2, sort_keys=True) + "\n").encode())
    cur.execute(render("model/set_artifact.sql"), {"path": key, "id": run_id})
    return key


def load_artifact(key: str, root: StorageRoot | None = None) -> tuple[Any, dict[str, Any]]:
    """The estimator and metadata saved by `save_artifact` under `key`.

    A registry row written before artifacts moved to the storage root holds an absolute
    local path: it is read from this machine's disk if it is there (a single-machine
    upgrade), else FileNotFoundError says to retrain.
    """
    import joblib

    if Path(key).is_absolute():
        folder = Path(key)
        if not (folder / ARTIFACT_FILE).exists():
            raise FileNotFoundError(
                f"{folder}: a model saved on a local disk before artifacts moved to the "
                "storage root, not on this machine; retrain to register a new one"
            )
        metadata = json.loads((folder / METADATA_FILE).read_text())
        return joblib.load(folder / ARTIFACT_FILE), metadata
    root = root or StorageRoot.configured()
    with root.open_read(f"{key}/{METADATA_FILE}") as handle:
        metadata = json.loads(handle.read())
    with root.open_read(f"{key}/{ARTIFACT_FILE}") as handle:
        return joblib.load(handle), metadata


def champion(cur: Cursor, city: str, resolution: int) -> Champion | None:
    """The current champion of a city, row-locked until the transaction ends."""
    cur.execute(render("model/champion.sql"), {"city": city, "resolution": resolution})
    row = cur.fetchone()
    return None if row is None else Champion(*row)


def publish(
    cur: Cursor, run_id: int, reason: str, evidence: dict[str, Any], previous: Champion | None
) -> None:
    """Make a model the city's published one, retiring the previous; note why."""
    if previous is not None and previous.id != run_id:
        cur.execute(render("model/retire_champion.sql"), {"id": previous.id})
    cur.execute(
        render("model/promote.sql"), {"id": run_id, "decision": reason, "evidence": Json(evidence)}
    )
    log.info("model run %s published: %s", run_id, reason)


def record_decision(cur: Cursor, run_id: int, reason: str, evidence: dict[str, Any]) -> None:
    cur.execute(
        render("model/record_decision.sql"),
        {"id": run_id, "decision": reason, "evidence": Json(evidence)},
    )


def record_gates(
    cur: Cursor,
    dag_run_id: str,
    city: str,
    resolution: int,
    as_of: date,
    figures: dict[str, Any],
    reason: str | None,
) -> None:
    """Store a city's gate figures for the run; `reason` is why it failed (None: passed)."""
    cur.execute(
        render("model/record_gates.sql"),
        {
            "dag_run_id": dag_run_id,
            "city": city,
            "resolution": resolution,
            "as_of": as_of,
            "passed": reason is None,
            "reason": reason,
            "figures": Json(figures),
        },
    )


def run_metrics(cur: Cursor, dag_run_id: str) -> list[dict[str, Any]]:
    """Every model a retrain run registered, per city, baselines first."""
    return _rows(cur, "model/run_metrics.sql", dag_run_id)


def run_gates(cur: Cursor, dag_run_id: str) -> list[dict[str, Any]]:
    """Every city's gate figures of a retrain run."""
    return _rows(cur, "model/run_gates.sql", dag_run_id)


def _rows(cur: Cursor, relative: str, dag_run_id: str) -> list[dict[str, Any]]:
    cur.execute(render(relative), {"dag_run_id": dag_run_id})
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
