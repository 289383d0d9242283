"""The model registry records every model, the decisions and gate figures, keeps one published
model per city (retiring the previous one), and versions artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import query

WINDOWS = {
    "feature_start": "2025-08-01",
    "train_start": "2025-08-29",
    "train_end": "2025-09-25",
    "test_start": "2025-09-26",
    "test_end": "2025-10-09",
}


@pytest.fixture
def registry_dsn(fresh_warehouse: str) -> Iterator[str]:
    import psycopg2

    from citypulse.model.registry import ensure_registry

    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        ensure_registry(cur)
        ensure_registry(cur)  # idempotent
    conn.close()
    yield fresh_warehouse


def model_run(dag_run_id: str, pr_auc: float, kind: str = "random_forest") -> Any:
    from citypulse.model.registry import ModelRun

    return ModelRun(
        dag_run_id=dag_run_id,
        city="nyc_311",
        resolution=7,
        model_kind=kind,
        role="candidate",
        params={"seed": 1},
        windows=WINDOWS,
        label_threshold=3.0,
        metrics={"pr_auc": pr_auc},
    )


def register_and_publish(dsn: str, dag_run_id: str, pr_auc: float, publish: bool) -> int:
    """What a retrain does with its candidate once `promotion` has decided."""
    import psycopg2

    from citypulse.model import registry

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        registry.lock_city(cur, "nyc_311")
        run_id = registry.record(cur, model_run(dag_run_id, pr_auc))
        previous = registry.champion(cur, "nyc_311", 7)
        evidence = {"lift_low": 0.01 if publish else -0.01}
        if publish:
            registry.publish(cur, run_id, "promoted: the lift holds", evidence, previous)
        else:
            registry.record_decision(cur, run_id, "refused: the lift does not hold", evidence)
    conn.close()
    return run_id


def champions(dsn: str) -> list[tuple[Any, ...]]:
    return query(
        dsn, "SELECT id, dag_run_id FROM citypulse.model_runs WHERE promoted AND city = 'nyc_311'"
    )


def test_publishing_retires_the_previous_model_and_a_refusal_changes_nothing(
    registry_dsn: str,
) -> None:
    first = register_and_publish(registry_dsn, "week1", 0.60, publish=True)
    assert champions(registry_dsn) == [(first, "week1")]
    better = register_and_publish(registry_dsn, "week2", 0.65, publish=True)
    assert champions(registry_dsn) == [(better, "week2")]
    (retired,) = query(
        registry_dsn,
        "SELECT promoted, promoted_at IS NOT NULL, retired_at IS NOT NULL "
        "FROM citypulse.model_runs WHERE id = %s",
        (first,),
    )
    assert retired == (False, True, True)

    worse = register_and_publish(registry_dsn, "week3", 0.55, publish=False)
    assert champions(registry_dsn) == [(better, "week2")]
    (row,) = query(
        registry_dsn,
        "SELECT promoted, promoted_at, decision, evidence FROM citypulse.model_runs WHERE id = %s",
        (worse,),
    )
    assert row == (False, None, "refused: the lift does not hold", {"lift_low": -0.01})


def test_gate_figures_are_stored_per_run_and_city(registry_dsn: str) -> None:
    import psycopg2

    from citypulse.model import registry

    with psycopg2.connect(registry_dsn) as conn, conn.cursor() as cur:
        for reason in ("coverage 0.1 is below min_coverage 0.8", None):  # a retry replaces
            registry.record_gates(
                cur, "run-a", "nyc_311", 7, date(2022, 12, 24), {"coverage": []}, reason
            )
    conn.close()
    assert query(
        registry_dsn, "SELECT dag_run_id, city, as_of, passed, reason FROM citypulse.retrain_gates"
    ) == [("run-a", "nyc_311", date(2022, 12, 24), True, None)]


def test_a_retried_task_updates_its_row_and_two_champions_cannot_exist(registry_dsn: str) -> None:
    import psycopg2

    from citypulse.model import registry

    with psycopg2.connect(registry_dsn) as conn, conn.cursor() as cur:
        first = registry.record(cur, model_run("run-a", 0.6))
        again = registry.record(cur, model_run("run-a", 0.7))
        other = registry.record(cur, model_run("run-b", 0.6))
    conn.close()
    assert first == again != other
    assert query(
        registry_dsn, "SELECT metrics->>'pr_auc' FROM citypulse.model_runs WHERE id = %s", (first,)
    ) == [("0.7",)]
    query(registry_dsn, "UPDATE citypulse.model_runs SET promoted = true WHERE id = %s", (first,))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        query(
            registry_dsn, "UPDATE citypulse.model_runs SET promoted = true WHERE id = %s", (other,)
        )


def test_artifacts_are_saved_under_a_versioned_key(registry_dsn: str, tmp_path: Path) -> None:
    import psycopg2
    from sklearn.linear_model import LogisticRegression

    from citypulse.model import registry
    from citypulse.storage import StorageRoot

    root = StorageRoot(tmp_path.as_uri())

    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    run = model_run("run-a", 0.6, kind="logistic_regression")
    with psycopg2.connect(registry_dsn) as conn, conn.cursor() as cur:
        run_id = registry.record(cur, run)
        key = registry.save_artifact(cur, run_id, run, estimator, {"features": ["x"]}, root=root)
    conn.close()
    assert key == f"models/nyc_311/logistic_regression/v{run_id}"
    assert (tmp_path / key / "model.joblib").is_file()
    loaded, metadata = registry.load_artifact(key, root=root)
    assert metadata == {"features": ["x"], "model_run_id": run_id}
    assert loaded.predict_proba([[2.5]]).tolist() == estimator.predict_proba([[2.5]]).tolist()
    assert query(
        registry_dsn, "SELECT artifact_path FROM citypulse.model_runs WHERE id = %s", (run_id,)
    ) == [(key,)]
    # A row from before artifacts moved to the storage root names a local folder: read it
    # where it is, or say to retrain.
    assert registry.load_artifact(str(tmp_path / key))[1] == metadata
    with pytest.raises(FileNotFoundError, match="retrain"):
        registry.load_artifact(str(tmp_path / "elsewhere" / key))


def test_artifacts_go_to_an_s3_root(s3_server: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    from citypulse.model import registry
    from citypulse.storage import StorageRoot

    bucket = s3_server.bucket()
    root = StorageRoot(s3_server.url(bucket))
    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    run = model_run("run-s3", 0.6, kind="logistic_regression")

    class Cursor:
        def execute(self, *_: Any) -> None:
            pass

    key = registry.save_artifact(Cursor(), 7, run, estimator, {"features": ["x"]}, root=root)
    assert s3_server.keys(bucket) == [
        f"citypulse/{key}/metadata.json",
        f"citypulse/{key}/model.joblib",
    ]
    loaded, _ = registry.load_artifact(key, root=root)
    assert loaded.predict_proba([[2.5]]).tolist() == estimator.predict_proba([[2.5]]).tolist()


def test_a_registry_from_before_the_publication_lag_gains_the_column(registry_dsn: str) -> None:
    """An existing warehouse's `model_runs` without `publication_lag_days` (as created before
    the lag existed) keeps its rows, which read 0, and new runs record their lag."""
    from dataclasses import replace

    import psycopg2

    from citypulse.model import registry

    with psycopg2.connect(registry_dsn) as conn, conn.cursor() as cur:
        old = registry.record(cur, model_run("before", 0.3))
    conn.close()
    query(registry_dsn, "ALTER TABLE citypulse.model_runs DROP COLUMN publication_lag_days")
    with psycopg2.connect(registry_dsn) as conn, conn.cursor() as cur:
        registry.ensure_registry(cur)
        run = replace(model_run("after", 0.3), windows={**WINDOWS, "lag_days": 7})
        new = registry.record(cur, run)
    conn.close()
    rows = query(
        registry_dsn,
        "SELECT id, publication_lag_days FROM citypulse.model_runs ORDER BY id",
    )
    assert rows == [(old, 0), (new, 7)]
