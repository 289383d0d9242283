"""Shared fixtures: a real PostgreSQL warehouse, a migrated Airflow metadata DB, and the
SODA stand-in server that the real `sodapy` client talks to.

The environment is set before anything imports Airflow or CityPulse: both read it once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="citypulse-tests-"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION_DIR / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "CITYPULSE_DATA_DIR": str(_SESSION_DIR / "data"),
        "CITYPULSE_HTTP_BACKOFF_SECONDS": "0.05",
        "CITYPULSE_HTTP_TIMEOUT_SECONDS": "5",
        # A failing task must fail the test in seconds, not after minutes of retry delays.
        "CITYPULSE_RETRY_DELAY_SECONDS": "0.5",
        "GX_ANALYTICS_ENABLED": "False",
        # The log servers a LocalExecutor scheduler and a triggerer start bind 8793 and 8794
        # by default: ports of this session's own, so sessions (pytest-xdist's workers, other
        # checkouts' runs) that start schedulers at once never collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
    }
)
os.environ.pop("SOCRATA_APP_TOKEN", None)
os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
sys.path.insert(0, str(ROOT / "include"))

TEST_SERVER = os.environ.get(
    "CITYPULSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


def _server_dsn() -> str:
    """The PostgreSQL server to test against: the local one, else an embedded one."""
    import psycopg2

    try:
        psycopg2.connect(TEST_SERVER, connect_timeout=3).close()
        return TEST_SERVER
    except psycopg2.OperationalError:
        from citypulse.warehouse.connection import embedded_dsn

        return embedded_dsn(_SESSION_DIR / "pgserver")


# `make test` runs the suite on pytest-xdist's workers, a file at a time each (`--dist
# loadfile --no-loadscope-reorder`), files in the order collected. The longest files (measured
# with `pytest --durations=0`) go first so that none of them starts last, while the other
# worker has nothing left to do. Worker 0 takes the 1st and 3rd, worker 1 the 2nd and 4th:
# the two that run a whole Airflow deployment (Celery, standalone) run one after the other.
LONGEST_FIRST = (
    "test_celery_deployment.py",
    "test_reconcile.py",
    "test_backfill.py",
    "test_benchmarks_smoke.py",
    "test_realdata_replay.py",
    "test_incremental.py",
    "test_hotspot_retrain_dag.py",
    "test_city_dags_e2e.py",
    "test_lineage_e2e.py",
    "test_backtest_chicago.py",
    "test_scaffold.py",
    "test_realdata.py",
    "test_dags_test_cli.py",
    "test_ui.py",
    "test_chunks.py",
    "test_dagbag.py",
    "test_faults.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # not on an xdist worker: the order pytest collected
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


@pytest.fixture(scope="session")
def pg_server() -> str:
    return _server_dsn()


def _create_database(server: str, template: str | None = None) -> str:
    """A new database; with `template` (the DSN of a database `freeze_as_template` froze),
    a copy of that one: PostgreSQL copies its files, much faster than loading it again."""
    import psycopg2
    from psycopg2.extensions import make_dsn, parse_dsn

    name = f"citypulse_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        if template is None:
            cur.execute(f'CREATE DATABASE "{name}"')
        else:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parse_dsn(template)["dbname"]}"')
    conn.close()
    return make_dsn(**{**parse_dsn(server), "dbname": name})


def freeze_as_template(server: str, dsn: str) -> None:
    """Make a loaded database a template for `_create_database`: PostgreSQL copies a database
    only while nothing is connected to it, so refuse new connections and end the open ones
    (a connection pool's idle ones included)."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    name = parse_dsn(dsn)["dbname"]
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    conn.close()


def _drop_database(server: str, dsn: str) -> None:
    import psycopg2
    from psycopg2.extensions import parse_dsn

    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{parse_dsn(dsn)["dbname"]}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def warehouse(pg_server: str) -> Iterator[str]:
    """A fresh database for the session, wired in as the `warehouse` Airflow connection."""
    dsn = _create_database(pg_server)
    from citypulse.warehouse.connection import airflow_conn_json

    os.environ["AIRFLOW_CONN_WAREHOUSE"] = airflow_conn_json(dsn)
    yield dsn
    os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
    _drop_database(pg_server, dsn)


@contextmanager
def warehouse_of_its_own(pg_server: str, template: str | None = None) -> Iterator[str]:
    """A fresh database (with `template`, a copy of that one) wired in as the `warehouse`
    connection, then the previous one back."""
    dsn = _create_database(pg_server, template)
    previous = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    from citypulse.warehouse.connection import airflow_conn_json

    os.environ["AIRFLOW_CONN_WAREHOUSE"] = airflow_conn_json(dsn)
    try:
        yield dsn
    finally:
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
        else:
            os.environ["AIRFLOW_CONN_WAREHOUSE"] = previous
        _drop_database(pg_server, dsn)


@pytest.fixture
def fresh_warehouse(pg_server: str) -> Iterator[str]:
    """A database of its own for one test (use when a test needs empty tables)."""
    with warehouse_of_its_own(pg_server) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def module_warehouse(pg_server: str) -> Iterator[str]:
    """A database of its own for one test module (tests sharing expensive DAG runs)."""
    with warehouse_of_its_own(pg_server) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def dagbag(airflow_db: str) -> Any:
    """The project's DAGs as Airflow parses them (for `dag.test()`)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def query(dsn: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of one statement, on a connection of its own."""
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated Airflow metadata DB (SQLite in the session folder) with the pool."""
    env = {**os.environ}
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=env,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", "socrata_api", "4", "Socrata API"],
        check=True,
        env=env,
        capture_output=True,
    )
    _keep_param_defaults_across_runs()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def _keep_param_defaults_across_runs() -> None:
    """Every `dag.test()` run leaves the DAG's Params as it found them.

    Airflow 3.3 resolves a task's params in process by writing the run's conf into the DAG's
    (and tasks') own `Param` objects (`process_params` -> `Param.resolve` sets `.value`), so
    in one process a later run of the same DAG object inherits an earlier run's conf as its
    defaults. Workers parse DAGs afresh per task; the tests run many `dag.test()` in one
    process (tests/test_dag_test_harness.py).
    """
    import copy

    from airflow.sdk.definitions.dag import DAG

    if getattr(DAG.test, "keeps_param_defaults", False):
        return
    run = DAG.test

    def test(self: DAG, *args: Any, **kwargs: Any) -> Any:
        owners = [self.params, *(task.params for task in self.tasks if task.params)]
        params = {id(p): p for owner in owners for p in (owner.get_param(k) for k in owner)}
        defaults = {key: copy.deepcopy(p.value) for key, p in params.items()}
        try:
            return run(self, *args, **kwargs)
        finally:
            for key, param in params.items():
                param.value = defaults[key]

    test.keeps_param_defaults = True  # type: ignore[attr-defined]
    DAG.test = test  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def standin() -> Iterator[Any]:
    """The SODA stand-in on an ephemeral port; every portal is redirected to it."""
    from citypulse.contracts.contract import load_contracts
    from citypulse_dev.standin.catalog import declare_contracts
    from citypulse_dev.standin.server import SodaStandIn

    server = SodaStandIn()
    base_url = server.start()
    declare_contracts(server, load_contracts()[0])
    os.environ["SOCRATA_BASE_URL"] = base_url
    yield server
    os.environ.pop("SOCRATA_BASE_URL", None)
    server.stop()


@pytest.fixture(scope="session")
def contracts() -> list[Any]:
    from citypulse.contracts.contract import load_contracts

    loaded, errors = load_contracts()
    assert not errors, errors
    return loaded


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real extracts not present at {REALDATA}")
    return REALDATA


class S3Server:
    """An S3-compatible server (moto, in server mode) and an Airflow `aws` connection to it."""

    CONN_ID = "citypulse_s3"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.conn_json = json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        )

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"citypulse-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "citypulse") -> str:
        """A CITYPULSE_STORAGE_URL for a bucket, through the connection."""
        return f"s3://{self.CONN_ID}@{bucket}/{prefix}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free port; the connection `citypulse_s3` points at it."""
    import socket
    import time

    from helpers import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.2)
    server = S3Server(f"http://127.0.0.1:{port}")
    os.environ[f"AIRFLOW_CONN_{S3Server.CONN_ID.upper()}"] = server.conn_json
    yield server
    os.environ.pop(f"AIRFLOW_CONN_{S3Server.CONN_ID.upper()}", None)
    process.terminate()
    process.wait(timeout=30)
