"""User story: an engineer backfills a date range of a city with a running scheduler
(LocalExecutor, `airflow standalone`); exactly those local days land. Backfilling an
overlapping range again (reprocessing completed days) duplicates nothing and leaves the days
already loaded exactly as they were.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, _create_database, _drop_database, query
from helpers import free_port, seed_days

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "chicago_crime"
FIRST = date.today() - timedelta(days=30)
DAYS = [FIRST + timedelta(days=i) for i in range(4)]


def airflow(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def wait(what: str, check: Any, timeout: float = 300, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n{tail}")


@pytest.fixture(scope="module")
def scheduler(
    pg_server: str, standin: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`airflow standalone` on a Postgres metadata DB, with only the Chicago contract."""
    home = tmp_path_factory.mktemp("airflow-scheduler")
    contracts = home / "contracts"
    contracts.mkdir()
    shutil.copy(ROOT / "include" / "contracts" / f"{DAG_ID}.yaml", contracts)
    meta = _create_database(pg_server)
    warehouse = _create_database(pg_server)
    from psycopg2.extensions import parse_dsn

    from citypulse.warehouse.connection import airflow_conn_json

    parts = parse_dsn(meta)
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://{parts.get('user', 'postgres')}@{parts.get('host')}:"
            f"{parts.get('port', 5432)}/{parts['dbname']}"
        ),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "CITYPULSE_CONTRACTS_DIR": str(contracts),
        "AIRFLOW_CONN_WAREHOUSE": airflow_conn_json(warehouse),
        "PYTHONPATH": str(ROOT / "include"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", "socrata_api", "2", "Socrata SODA API")
    log = home / "standalone.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield {"env": env, "warehouse": warehouse, "log": log, "meta": meta}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        _drop_database(pg_server, warehouse)
        _drop_database(pg_server, meta)


def finished_runs(meta: str) -> dict[str, list[str]]:
    """The backfill runs' states by (UTC) logical date, newest run first, as `airflow dags
    list-runs` lists them; read from the metadata DB, which the test polls (an `airflow`
    command takes seconds of CPU to start)."""
    # Unpausing also schedules the latest interval: not ours to check.
    runs = query(
        meta,
        "SELECT to_char(logical_date AT TIME ZONE 'UTC', 'YYYY-MM-DD'), state FROM dag_run "
        "WHERE dag_id = %s AND run_id LIKE 'backfill\\_\\_%%' ORDER BY run_after DESC",
        (DAG_ID,),
    )
    by_date: dict[str, list[str]] = {}
    for day, state in runs:
        by_date.setdefault(day, []).append(state)
    return by_date


def backfill(env: dict[str, str], first: date, last: date) -> None:
    """Create a backfill; Airflow allows one active backfill per DAG, and marks the previous
    one complete a few scheduler loops after its last run finished: wait for that."""
    command = [
        sys.executable,
        "-m",
        "citypulse.dags.backfill",
        "--dag-id",
        DAG_ID,
        "--from-date",
        first.isoformat(),
        "--to-date",
        last.isoformat(),
        "--max-active-runs",
        "2",
        "--reprocess-behavior",
        "completed",
    ]
    deadline = time.monotonic() + 180
    while True:
        out = subprocess.run(command, env=env, capture_output=True, text=True)
        if out.returncode == 0:
            return
        if "AlreadyRunningBackfill" not in out.stdout + out.stderr or time.monotonic() > deadline:
            pytest.fail(out.stdout + out.stderr)
        time.sleep(3)


def rows_per_day(dsn: str) -> dict[date, int]:
    return dict(query(dsn, "SELECT date::date, count(*) FROM citypulse.chicago_crime GROUP BY 1"))


def audits(dsn: str) -> int:
    (exists,) = query(dsn, "SELECT to_regclass('citypulse.ingest_runs')")
    if exists[0] is None:
        return 0
    return int(
        query(
            dsn,
            "SELECT count(*) FROM citypulse.ingest_runs WHERE window_start::date BETWEEN %s AND %s",
            (DAYS[0], DAYS[-1]),
        )[0][0]
    )


def test_backfill_loads_exactly_those_days_and_repeats_cleanly(
    scheduler: dict[str, Any], standin: Any, contracts: list[Any]
) -> None:
    env = scheduler["env"]
    dsn, log, meta = scheduler["warehouse"], scheduler["log"], scheduler["meta"]
    contract = next(c for c in contracts if c.dag_id == DAG_ID)
    standin.clear(contract.dataset_id)
    from citypulse_dev.standin.catalog import declare_contracts

    declare_contracts(standin, [contract])
    # Days around the range are served too: they must not land.
    served = seed_days(standin, contract, [FIRST - timedelta(days=1), *DAYS], seed=41)
    expected = {day: len(g.records) - len(g.malformed) for day, g in served.items() if day in DAYS}
    wait("the API server", lambda: b"Uvicorn running" in log.read_bytes(), 240, log)
    wait(
        "the DAG to be parsed",
        lambda: query(meta, "SELECT 1 FROM dag WHERE dag_id = %s", (DAG_ID,)),
        240,
        log,
    )
    airflow(env, "dags", "unpause", DAG_ID)

    backfill(env, DAYS[0], DAYS[2])
    wait("3 backfill runs", lambda: audits(dsn) >= 3, 420, log)
    # The audit row is written by `load`; reconcile and build_views may still be running.
    runs = wait(
        "the 3 runs to finish",
        lambda: (
            (r := finished_runs(meta))
            and len(r) == 3
            and all(s[-1] in ("success", "failed") for s in r.values())
            and r
        ),
        180,
        log,
    )
    assert sorted(runs) == [d.isoformat() for d in DAYS[:3]]
    assert all(states == ["success"] for states in runs.values()), runs
    loaded = rows_per_day(dsn)
    assert loaded == {day: expected[day] for day in DAYS[:3]}
    before = query(
        dsn,
        "SELECT * FROM citypulse.chicago_crime WHERE date < %s ORDER BY id",
        (datetime.combine(DAYS[2] + timedelta(days=1), datetime.min.time()),),
    )

    # Overlap: days 2-3 again (reprocessing completed runs) and day 4 for the first time.
    backfill(env, DAYS[1], DAYS[3])
    wait("3 more runs", lambda: audits(dsn) >= 6, 420, log)
    wait(
        "the runs to settle",
        lambda: all(s and s[-1] in ("success", "failed") for s in finished_runs(meta).values()),
        120,
        log,
    )
    assert rows_per_day(dsn) == expected
    after = query(
        dsn,
        "SELECT * FROM citypulse.chicago_crime WHERE date < %s ORDER BY id",
        (datetime.combine(DAYS[2] + timedelta(days=1), datetime.min.time()),),
    )
    assert after == before
    (duplicates,) = query(dsn, "SELECT count(*) - count(DISTINCT id) FROM citypulse.chicago_crime")
    assert duplicates == (0,)
    reloads = query(
        dsn,
        "SELECT window_start::date, inserted, updated FROM citypulse.ingest_runs "
        "WHERE window_start::date BETWEEN %s AND %s ORDER BY id OFFSET 3",
        (DAYS[0], DAYS[-1]),
    )
    assert sorted(reloads) == [
        (DAYS[1], 0, 0),
        (DAYS[2], 0, 0),
        (DAYS[3], expected[DAYS[3]], 0),
    ]
    # Backfills load exactly their days: no change capture, and the watermark stays the
    # daily runs' to move.
    assert query(
        dsn,
        "SELECT count(*) FILTER (WHERE change_rows <> 0 OR watermark IS NOT NULL), count(*) "
        "FROM citypulse.ingest_runs WHERE run_id LIKE 'backfill%%'",
    ) == [(0, 6)]


def test_history_in_windows_loads_every_day_once(
    scheduler: dict[str, Any], standin: Any, contracts: list[Any]
) -> None:
    """`citypulse backfill --window N`: one reload run per window of N local days, run by
    the scheduler under the DAG's `max_active_runs` and the pool; every day of the range
    lands exactly once, nothing outside it."""
    env, dsn, log, meta = (scheduler[k] for k in ("env", "warehouse", "log", "meta"))
    contract = next(c for c in contracts if c.dag_id == DAG_ID)
    from citypulse_dev.standin.catalog import declare_contracts

    declare_contracts(standin, [contract])
    history = [FIRST + timedelta(days=10 + i) for i in range(5)]
    around = [history[0] - timedelta(days=1), history[-1] + timedelta(days=1)]
    served = seed_days(standin, contract, [*around, *history], seed=43)
    expected = {day: len(g.records) - len(g.malformed) for day, g in served.items()}
    wait("the API server", lambda: b"Uvicorn running" in log.read_bytes(), 240, log)
    wait(
        "the DAG to be parsed",
        lambda: query(meta, "SELECT 1 FROM dag WHERE dag_id = %s", (DAG_ID,)),
        240,
        log,
    )
    airflow(env, "dags", "unpause", DAG_ID)
    command = [sys.executable, "-m", "citypulse.dags.backfill", "--dag-id", DAG_ID]
    dates = ["--from-date", history[0].isoformat(), "--to-date", history[-1].isoformat()]
    out = subprocess.run(
        [*command, *dates, "--window", "2"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr

    def history_runs() -> dict[str, str]:
        """The window runs' states, from the metadata DB (as `finished_runs`)."""
        runs = query(
            meta,
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_id LIKE 'history\\_\\_%%'",
            (DAG_ID,),
        )
        return {run_id: state for run_id, state in runs}

    runs = wait(
        "the 3 window runs to finish",
        lambda: (
            (r := history_runs())
            and len(r) == 3
            and all(s in ("success", "failed") for s in r.values())
            and r
        ),
        600,
        log,
    )
    first, last = history[0], history[-1]
    assert sorted(runs) == [
        f"history__{first}__{first + timedelta(days=1)}",
        f"history__{first + timedelta(days=2)}__{first + timedelta(days=3)}",
        f"history__{last}__{last}",
    ]
    assert set(runs.values()) == {"success"}, runs
    loaded = {day: n for day, n in rows_per_day(dsn).items() if around[0] <= day <= around[1]}
    assert loaded == {day: expected[day] for day in history}
    # A window triggered again is refused by its run id, not loaded twice.
    again = subprocess.run(
        [*command, *dates, "--window", "2"], env=env, capture_output=True, text=True
    )
    assert again.returncode != 0
    assert len(history_runs()) == 3
