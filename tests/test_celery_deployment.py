"""User story: CityPulse runs on a multi-worker CeleryExecutor whose workers share no disk.

A real deployment on this machine: Redis as the Celery broker, PostgreSQL as Airflow's
metadata DB and result backend, the api-server, scheduler and dag-processor, and two
`airflow celery worker` processes, each with its own AIRFLOW_HOME and CityPulse data folder
(and its own hostname) in a mount namespace where the other's folders are an empty tmpfs,
so a file one worker writes to its disk is invisible to the other, as on two hosts.
Run files live in an S3-compatible server (moto) reached through an Airflow `aws` connection.

- A backfill of 3 days of two cities: every task instance succeeds on its first try, at
  least one handoff crosses workers, and the warehouse holds exactly what the portal served.
- Clearing `validate`, then `load`, of a finished run through the REST API (the UI's Clear)
  reruns each on whichever worker takes it; the rerun changes nothing.
- A worker is killed (SIGKILL, all its processes) while a run's extract is on it: the
  scheduler notices the missing heartbeat, the task is retried on the other worker, and the
  run completes with nothing lost or duplicated.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, _create_database, _drop_database, query
from helpers import by_id, free_port, fresh_dataset, seed_days

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIES = ("chicago_crime", "nyc_311")
FIRST = date.today() - timedelta(days=20)
DAYS = [FIRST + timedelta(days=i) for i in range(3)]
KILL_DAY = FIRST + timedelta(days=5)
WORKERS = ("worker-a", "worker-b")
REDIS = ("127.0.0.1", 6379)
# Seconds without a heartbeat before the scheduler fails a task instance (default 300).
HEARTBEAT_TIMEOUT = 15
ADMIN_PASSWORD = "citypulse-test-admin"
PRIVATE_MOUNTS = ["unshare", "--mount", "--propagation", "private"]


def mount_namespaces() -> None:
    """Fail unless this machine lets the test give a process mounts of its own (root)."""
    probe = subprocess.run(
        [*PRIVATE_MOUNTS, "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.fail(
            "two workers without a shared disk need mount namespaces (`unshare -m`, as "
            f"root): {probe.stderr.decode(errors='replace').strip()}"
        )


def redis_db() -> int:
    """A Redis database of this test's own (0 is left to others), emptied."""
    import redis

    number = 1 + os.getpid() % 15
    client = redis.Redis(*REDIS, db=number, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run on {REDIS[0]}:{REDIS[1]} for this test: {exc}")
    return number


class Deployment:
    """The running Airflow services and the two workers."""

    def __init__(self, env: dict[str, str], home: Path, meta: str, api: str) -> None:
        self.env, self.home, self.meta, self.api = env, home, meta, api
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None, hide: list[Path] = ()
    ) -> None:
        """Start `airflow <args>`; with `hide`, in a mount namespace of its own where a
        tmpfs covers each of those folders, as a process on another host would see them."""
        log = (self.home / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "airflow", *args]
        if hide:
            mounts = " && ".join(f"mount -t tmpfs tmpfs {folder}" for folder in hide)
            command = [*PRIVATE_MOUNTS, "sh", "-c", f'{mounts} && exec "$0" "$@"', *command]
        self.processes[name] = subprocess.Popen(
            command,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def worker_env(self, name: str, log_port: int) -> dict[str, str]:
        home = self.home / name
        return {
            **self.env,
            "AIRFLOW_HOME": str(home),
            "CITYPULSE_DATA_DIR": str(home / "data"),
            "CITYPULSE_TEST_HOSTNAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "helpers.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        }

    def kill(self, name: str) -> None:
        """SIGKILL a worker and every process it started, as if its host died."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if f"CITYPULSE_TEST_HOSTNAME={name}".encode() in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.home.glob("*.log"))
        )

    def airflow(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def task_instances(self, where: str = "TRUE", params: Any = None) -> list[dict[str, Any]]:
        rows = query(
            self.meta,
            "SELECT dag_id, run_id, task_id, state, try_number, hostname FROM task_instance "
            f"WHERE {where} ORDER BY dag_id, run_id, task_id",
            params,
        )
        keys = ("dag_id", "run_id", "task_id", "state", "try_number", "hostname")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def run_states(self) -> dict[tuple[str, str], str]:
        rows = query(self.meta, "SELECT dag_id, run_id, state FROM dag_run")
        return {(dag_id, run_id): state for dag_id, run_id, state in rows}

    def wait(self, what: str, check: Any, timeout: float = 300) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None and name not in self.killed:
                    pytest.fail(f"{name} exited ({process.returncode})\n{self.logs()}")
            value = check()
            if value:
                return value
            time.sleep(1)
        pytest.fail(f"timed out waiting for {what}\n{self.logs()}")

    killed: set[str] = set()

    def rest(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The REST API as the UI calls it, logged in as admin."""
        token_request = urllib.request.Request(
            f"{self.api}/auth/token",
            data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(token_request, timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        request = urllib.request.Request(
            f"{self.api}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def deployment(
    pg_server: str,
    standin: Any,
    s3_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Deployment, str, str]]:
    """The Celery deployment; yields it, the warehouse DSN and the storage bucket."""
    from psycopg2.extensions import parse_dsn

    from citypulse.warehouse.connection import airflow_conn_json

    mount_namespaces()
    home = tmp_path_factory.mktemp("celery")
    contracts = home / "contracts"
    contracts.mkdir()
    for city in CITIES:
        (contracts / f"{city}.yaml").write_bytes(
            (ROOT / "include" / "contracts" / f"{city}.yaml").read_bytes()
        )
    meta, warehouse = _create_database(pg_server), _create_database(pg_server)
    bucket = s3_server.bucket()
    parts = parse_dsn(meta)
    user, host, port = parts.get("user", "postgres"), parts.get("host"), parts.get("port", 5432)
    meta_url = f"postgresql+psycopg2://{user}@{host}:{port}/{parts['dbname']}"
    api_port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home / "scheduler"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db()}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{user}@{host}:{port}/{parts['dbname']}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "citypulse-test-jwt-secret",
        "AIRFLOW__API__SECRET_KEY": "citypulse-test-secret-key",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "CITYPULSE_CONTRACTS_DIR": str(contracts),
        "CITYPULSE_DATA_DIR": str(home / "scheduler" / "data"),
        "CITYPULSE_STORAGE_URL": s3_server.url(bucket),
        "CITYPULSE_HTTP_TIMEOUT_SECONDS": "60",
        "AIRFLOW_CONN_WAREHOUSE": airflow_conn_json(warehouse),
        "PYTHONPATH": f"{ROOT / 'include'}{os.pathsep}{ROOT / 'tests'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (home / "scheduler").mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": ADMIN_PASSWORD}))
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    deployment = Deployment(env, home, meta, f"http://127.0.0.1:{api_port}")
    deployment.airflow("db", "migrate")
    deployment.airflow("pools", "set", "socrata_api", "4", "Socrata SODA API")
    try:
        deployment.start("api-server", "api-server", "--port", str(api_port))
        deployment.start("scheduler", "scheduler")
        deployment.start("dag-processor", "dag-processor")
        private = {name: home / name for name in WORKERS}
        for folder in private.values():
            (folder / "data").mkdir(parents=True)
        for name in WORKERS:
            # Each worker sees its own folder only: the other's, and the scheduler's, are
            # an empty tmpfs in its mount namespace (a local path in XCom cannot work).
            deployment.start(
                name,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                env=deployment.worker_env(name, free_port()),
                hide=[home / "scheduler", *(f for n, f in private.items() if n != name)],
            )
        yield deployment, warehouse, bucket
    finally:
        deployment.stop()
        _drop_database(pg_server, warehouse)
        _drop_database(pg_server, meta)


def backfill(deployment: Deployment, dag_id: str, first: date, last: date) -> None:
    deployment.wait(
        f"a backfill of {dag_id}",
        lambda: (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "citypulse.dags.backfill",
                    "--dag-id",
                    dag_id,
                    "--from-date",
                    first.isoformat(),
                    "--to-date",
                    last.isoformat(),
                    "--max-active-runs",
                    "3",
                ],
                env=deployment.env,
                capture_output=True,
            ).returncode
            == 0
        ),
        120,
    )


def finished(deployment: Deployment, runs: set[tuple[str, str]]) -> bool:
    states = deployment.run_states()
    return all(states.get(run) in ("success", "failed") for run in runs)


def keys_by_day(dsn: str, contract: Any) -> dict[date, list[str]]:
    rows = query(
        dsn,
        f"SELECT {contract.event_time}::date, {contract.key}::text "
        f"FROM citypulse.{contract.table} ORDER BY 2",
    )
    found: dict[date, list[str]] = {}
    for day, key in rows:
        found.setdefault(day, []).append(key)
    return found


def served_keys(contract: Any, served: Any) -> list[str]:
    key = contract.key_column.wire_name
    return sorted(
        str(record[key]) for i, record in enumerate(served.records) if i not in served.malformed
    )


def test_two_workers_without_a_shared_disk_run_backfills_survive_a_clear_and_a_dead_worker(
    deployment: tuple[Deployment, str, str],
    standin: Any,
    s3_server: Any,
    contracts: list[Any],
) -> None:
    from citypulse_dev.standin.server import Fault

    airflow, warehouse, bucket = deployment
    served: dict[str, dict[date, Any]] = {}
    for city in CITIES:
        contract = by_id(contracts, city)
        fresh_dataset(standin, contract)
        served[city] = seed_days(standin, contract, [*DAYS, KILL_DAY], seed=71)
    airflow.wait(
        "the DAGs to be parsed",
        lambda: {row[0] for row in query(airflow.meta, "SELECT dag_id FROM dag")} >= set(CITIES),
        240,
    )
    for city in CITIES:
        airflow.airflow("dags", "unpause", city)
        backfill(airflow, city, DAYS[0], DAYS[-1])
    backfills = airflow.wait(
        "6 backfill runs",
        lambda: (
            (runs := {run for run in airflow.run_states() if run[1].startswith("backfill__")})
            and len(runs) == 6
            and runs
        ),
        120,
    )
    airflow.wait("the backfill runs to finish", lambda: finished(airflow, backfills), 420)
    # The scheduler marks a backfill complete some seconds after its last run. Seen once: a
    # run whose task was cleared in between stayed queued and never ran (the backfill was
    # marked complete 15 s after the clear); an operator clears a finished backfill's runs.
    airflow.wait(
        "the backfills to be marked complete",
        lambda: not query(airflow.meta, "SELECT id FROM backfill WHERE completed_at IS NULL"),
        120,
    )

    # Every task instance succeeded on its first try, on one worker or the other.
    tis = airflow.task_instances("run_id LIKE 'backfill__%%'")
    assert {(t["state"], t["try_number"]) for t in tis} == {("success", 1)}, tis
    assert len(tis) == 6 * 6
    assert {t["hostname"] for t in tis} == set(WORKERS)
    host = {(t["dag_id"], t["run_id"], t["task_id"]): t["hostname"] for t in tis}
    crossings = [
        (dag_id, run_id, up, down)
        for dag_id, run_id in backfills
        for up, down in (("extract", "validate"), ("validate", "load"), ("validate", "reconcile"))
        if host[(dag_id, run_id, up)] != host[(dag_id, run_id, down)]
    ]
    assert crossings, "no handoff crossed workers: the test proves nothing"
    for city in CITIES:
        contract = by_id(contracts, city)
        stored = keys_by_day(warehouse, contract)
        assert stored == {day: served_keys(contract, served[city][day]) for day in DAYS}
    # The run files are objects in the bucket, not on either worker's disk.
    assert any("/runs/chicago_crime/backfill__" in key for key in s3_server.keys(bucket))
    for name in WORKERS:
        assert not list((airflow.home / name / "data").glob("runs/*/*"))

    # An operator clears `validate`, then `load`, of a finished run (the UI's Clear).
    dag_id, run_id = sorted(backfills)[0]
    for task_id in ("validate", "load"):
        airflow.rest(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "include_downstream": False,
                "reset_dag_runs": True,
            },
        )
        airflow.wait(
            f"{task_id} to rerun",
            lambda task_id=task_id: (
                (
                    ti := airflow.task_instances(
                        "dag_id = %s AND run_id = %s AND task_id = %s", (dag_id, run_id, task_id)
                    )[0]
                )["state"]
                in ("success", "failed")
                and ti["try_number"] == 2
                and ti
            ),
            180,
        )
    reruns = airflow.task_instances(
        "dag_id = %s AND run_id = %s AND task_id IN ('validate', 'load')", (dag_id, run_id)
    )
    assert {(t["state"], t["try_number"]) for t in reruns} == {("success", 2)}
    audits = query(
        warehouse,
        "SELECT inserted, updated FROM citypulse.ingest_runs WHERE run_id = %s ORDER BY id",
        (run_id,),
    )
    assert len(audits) == 2 and audits[1] == (0, 0)

    # A worker dies while a run's extract is on it: the portal answers slowly, so the
    # extract is surely running when the worker is killed.
    city = "chicago_crime"
    contract = by_id(contracts, city)
    standin.add_fault(Fault(delay=HEARTBEAT_TIMEOUT * 3, times=1, dataset_id=contract.dataset_id))
    conf = json.dumps({"start_date": KILL_DAY.isoformat(), "end_date": KILL_DAY.isoformat()})
    airflow.airflow("dags", "trigger", city, "--conf", conf, "--run-id", "manual__kill_a_worker")
    running = airflow.wait(
        "the extract to run",
        lambda: [
            t
            for t in airflow.task_instances(
                "run_id = 'manual__kill_a_worker' AND task_id = 'extract'"
            )
            if t["state"] == "running" and t["hostname"]
        ],
        120,
    )
    victim = running[0]["hostname"]
    survivor = next(name for name in WORKERS if name != victim)
    time.sleep(2)  # the portal request is in flight
    Deployment.killed.add(victim)
    airflow.kill(victim)
    airflow.wait(
        "the run to finish on the surviving worker",
        lambda: finished(airflow, {(city, "manual__kill_a_worker")}),
        240,
    )
    standin.clear_faults()
    assert airflow.run_states()[(city, "manual__kill_a_worker")] == "success", airflow.logs()
    tis = airflow.task_instances("run_id = 'manual__kill_a_worker'")
    extract = next(t for t in tis if t["task_id"] == "extract")
    assert extract["try_number"] == 2 and extract["hostname"] == survivor
    assert {t["hostname"] for t in tis if t["task_id"] != "housekeeping"} == {survivor}
    stored = keys_by_day(warehouse, contract)
    assert stored[KILL_DAY] == served_keys(contract, served[city][KILL_DAY])
    assert query(
        warehouse,
        "SELECT count(*) FROM citypulse.ingest_runs WHERE run_id = 'manual__kill_a_worker'",
    ) == [(1,)]
    (duplicates,) = query(
        warehouse, "SELECT count(*) - count(DISTINCT id) FROM citypulse.chicago_crime"
    )
    assert duplicates == (0,)
