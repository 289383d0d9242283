"""User story: on a machine with no PostgreSQL server and no `warehouse` connection, a city DAG
still runs end to end, into an embedded PostgreSQL that CityPulse starts itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from citypulse.settings import PGSERVER_DIR
from conftest import ROOT, query
from helpers import run_city_day, seed_days, task_states, task_tries


@pytest.fixture
def no_warehouse_connection() -> Iterator[None]:
    previous = os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
    yield
    if previous is not None:
        os.environ["AIRFLOW_CONN_WAREHOUSE"] = previous


def test_connection_fields_become_a_dsn_without_leaking_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from psycopg2.extensions import parse_dsn

    from citypulse.warehouse.connection import warehouse_dsn

    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        '{"conn_type": "postgres", "host": "db.example", "port": 6543, "login": "cp", '
        '"password": "s3cr3t", "schema": "wh", "extra": {"sslmode": "require", "x": "y"}}',
    )
    parts = parse_dsn(warehouse_dsn())
    assert parts == {
        "host": "db.example",
        "port": "6543",
        "dbname": "wh",
        "user": "cp",
        "password": "s3cr3t",
        "application_name": "citypulse",
        "sslmode": "require",
    }


def test_a_non_postgres_warehouse_connection_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from citypulse.exceptions import WarehouseError
    from citypulse.warehouse.connection import warehouse_dsn

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", '{"conn_type": "mysql", "host": "h"}')
    with pytest.raises(WarehouseError, match="postgres"):
        warehouse_dsn()


@pytest.mark.integration
def test_city_dag_runs_into_the_embedded_postgres(
    no_warehouse_connection: None, standin: Any, airflow_db: str, contracts: list[Any]
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from citypulse.warehouse.connection import embedded_dsn, stop_embedded, warehouse_dsn

    contract = next(c for c in contracts if c.dag_id == "seattle_crime")
    day = date.today() - timedelta(days=10)
    served = seed_days(standin, contract, [day], seed=11)[day]
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[contract.dag_id]
    try:
        run = run_city_day(dag, contract, day)
        assert set(task_states(run).values()) == {"success"}
        dsn = warehouse_dsn()
        assert dsn == embedded_dsn()
        assert str(PGSERVER_DIR) in dsn
        loaded = query(
            dsn,
            "SELECT count(*) FROM citypulse.seattle_crime WHERE event_time::date = %s",
            (day,),
        )
        assert loaded == [(len(served.records) - len(served.malformed),)]
    finally:
        assert stop_embedded()


@pytest.mark.parametrize(
    ("executor", "names", "allowed"),
    [
        ("LocalExecutor", ["LocalExecutor"], True),
        ("CeleryExecutor", ["CeleryExecutor"], False),
        ("LocalExecutor,KubernetesExecutor", ["LocalExecutor", "KubernetesExecutor"], False),
        (
            "fast:airflow.executors.local_executor.LocalExecutor",
            ["LocalExecutor"],
            True,
        ),
        (
            "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
            ["CeleryExecutor"],
            False,
        ),
    ],
)
def test_the_embedded_warehouse_is_allowed_only_where_every_task_runs_here(
    monkeypatch: pytest.MonkeyPatch, executor: str, names: list[str], allowed: bool
) -> None:
    from citypulse.warehouse import connection

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    assert connection.executor_names() == names
    assert connection.embedded_allowed() is allowed
    monkeypatch.setattr(connection, "EMBEDDED_WAREHOUSE", not allowed)  # the setting decides
    assert connection.embedded_allowed() is (not allowed)


@pytest.mark.integration
def test_a_city_task_on_celery_without_the_warehouse_connection_fails_at_once_naming_it(
    no_warehouse_connection: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    standin: Any,
    dagbag: Any,
    contracts: list[Any],
) -> None:
    """Story: a Celery deployment was set up without the `warehouse` connection. The first
    task that needs the warehouse fails on its first try, saying which connection is missing
    and how to set it; no worker starts a private embedded database and ends green."""
    from citypulse.warehouse import connection

    started: list[Any] = []
    monkeypatch.setattr(connection, "embedded_dsn", lambda *a: started.append(a) or "")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    day = date.today() - timedelta(days=12)
    seed_days(standin, contract, [day], seed=12)
    run = run_city_day(dagbag.dags[contract.dag_id], contract, day)
    tries = task_tries(run)
    assert tries["extract"] == ("failed", 1)  # its watermark lives in the warehouse
    assert str(run.state) == "failed" and started == []
    alerts = [r.getMessage() for r in caplog.records if "CITYPULSE_ALERT" in r.getMessage()]
    assert any(
        "no Airflow connection 'warehouse'" in a
        and "CeleryExecutor" in a
        and "airflow connections add warehouse" in a
        for a in alerts
    ), alerts
