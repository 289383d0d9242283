"""`make demo` and `make stop`: the whole platform on one machine, offline.

start: a warehouse (the `warehouse` connection if configured, else an embedded PostgreSQL),
the SODA stand-in serving generated records for the last days, and `airflow standalone` in
the background with every city DAG unpaused; loads 20 weeks of generated history before
those days straight into the warehouse, backfills the last 7 days of each city, runs the
hotspot retrain once, waits for them and prints what landed, what the model published, the
UI address and the login. Airflow keeps running.
stop: stops what start started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from citypulse.contracts.contract import load_contracts
from citypulse.dags.backfill import command as backfill_command
from citypulse.settings import CONTRACTS_DIR, DATA_DIR, PROJECT_ROOT, SCHEMA
from citypulse.warehouse.sqlfiles import render

SQL_DIR = Path(__file__).resolve().parent / "sql"
AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", PROJECT_ROOT / ".airflow"))
STATE_FILE = DATA_DIR / "demo.json"
STANDIN_PORT = int(os.environ.get("CITYPULSE_STANDIN_PORT", "8765"))
API_PORT = int(os.environ.get("CITYPULSE_API_PORT", "8080"))
DAYS = int(os.environ.get("CITYPULSE_DEMO_DAYS", "7"))
# Weeks of generated history before the backfilled days: the hotspot retrain's defaults need
# 19 (34 warm-up days, 42 training days, 4 folds of 14), 22 for Chicago, whose contract's
# 7-day publication lag cuts its data and each fold's training short by 7 days each (with
# fewer, its oldest fold trains on fewer days). 0: no history and no retrain.
HISTORY_WEEKS = int(os.environ.get("CITYPULSE_DEMO_HISTORY_WEEKS", "20"))
RETRAIN_DAG = "hotspot_retrain"
META_DB = "citypulse_airflow"


def say(message: str) -> None:
    print(f"[citypulse] {message}", flush=True)


def warehouse_server_dsn() -> str:
    """The warehouse DSN: the configured connection, else the embedded server."""
    from citypulse.warehouse.connection import warehouse_dsn

    return warehouse_dsn()


def metadata_db_url(warehouse: str) -> str:
    """A database for Airflow's own metadata on the warehouse's server (created if missing)."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    conn = psycopg2.connect(warehouse)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (META_DB,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{META_DB}"')
    conn.close()
    parts = parse_dsn(warehouse)
    user = parts.get("user", "postgres")
    password = parts.get("password", "")
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = parts.get("host", "127.0.0.1")
    if host.startswith("/"):  # a unix socket folder (the embedded server)
        return f"postgresql+psycopg2://{auth}/{META_DB}?host={host}&port={parts.get('port', 5432)}"
    return f"postgresql+psycopg2://{auth}{host}:{parts.get('port', 5432)}/{META_DB}"


def airflow_env(meta_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "SOCRATA_BASE_URL": f"http://127.0.0.1:{STANDIN_PORT}",
        "CITYPULSE_DATA_DIR": str(DATA_DIR),
        "GX_ANALYTICS_ENABLED": "False",
        # `airflow standalone` starts its components as `airflow ...`: use this venv's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return env


def spawn(command: list[str], log_name: str, env: dict[str, str]) -> int:
    """Start a background process in its own session; returns its pid (= process group)."""
    log = (DATA_DIR / log_name).open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    return process.pid


def wait_for(url: str, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError:
            time.sleep(2)
    raise SystemExit(f"{what} did not come up within {timeout:.0f}s ({url}); see {DATA_DIR}")


def airflow(env: dict[str, str], *args: str, check: bool = True) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and out.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def json_rows(output: str) -> list[dict[str, Any]]:
    """The JSON array in an `airflow ... -o json` output (warnings may precede it)."""
    for start in (
        i for i, ch in enumerate(output) if ch == "[" and (i == 0 or output[i - 1] == "\n")
    ):
        try:
            rows, _ = json.JSONDecoder().raw_decode(output[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(rows, list):
            return rows
    return []


def serve_generated_data(contracts: list[Any], last_day: date) -> list[str]:
    """Generate the demo days per city into NDJSON files; returns the stand-in's --load args."""
    from citypulse_dev.generator import generate_range, write_ndjson

    folder = DATA_DIR / "standin"
    folder.mkdir(parents=True, exist_ok=True)
    loads = []
    first_day = last_day - timedelta(days=DAYS + 1)
    for contract in contracts:
        path = folder / f"{contract.dataset_id}.ndjson"
        records = [
            record
            for day in generate_range(contract, first_day, last_day + timedelta(days=1))
            for record in day.records
        ]
        write_ndjson(records, path)
        loads += ["--load", f"{path}:{contract.dataset_id}:{contract.key_column.wire_name}"]
    return loads


def wait_for_dags(env: dict[str, str], dag_ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = airflow(env, "dags", "list", "-o", "json", check=False)
        known = {d["dag_id"] for d in json_rows(listed)}
        if set(dag_ids) <= known:
            return
        time.sleep(5)
    raise SystemExit(f"the DAG processor did not register {dag_ids} within {timeout:.0f}s")


def wait_for_runs(
    env: dict[str, str], dag_ids: list[str], expected: int, timeout: float, what: str
) -> None:
    """Wait until each DAG has `expected` days (logical dates) whose latest run finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = {}
        for dag_id in dag_ids:
            runs = json_rows(airflow(env, "dags", "list-runs", dag_id, "-o", "json"))
            days = {r["logical_date"] for r in runs if r["state"] in ("success", "failed")}
            if len(days) < expected:
                pending[dag_id] = f"{len(days)}/{expected}"
        if not pending:
            return
        say(f"waiting for {what}: {pending}")
        time.sleep(15)
    raise SystemExit(f"{what} did not finish within {timeout:.0f}s")


def wait_until_idle(env: dict[str, str], dag_id: str, timeout: float, what: str) -> None:
    """Wait until the DAG has runs and every one of them has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = json_rows(airflow(env, "dags", "list-runs", dag_id, "-o", "json"))
        unfinished = [r["run_id"] for r in runs if r["state"] not in ("success", "failed")]
        if runs and not unfinished:
            return
        say(f"waiting for {what}: {', '.join(unfinished)}")
        time.sleep(10)
    raise SystemExit(f"{what} did not finish within {timeout:.0f}s")


def local_yesterday(contract: Any) -> date:
    """The last complete day in the city's own timezone."""
    return datetime.now(ZoneInfo(contract.timezone)).date() - timedelta(days=1)


def load_sample_history(contracts: list[Any], warehouse: str) -> None:
    """HISTORY_WEEKS of generated records per city, ending the day before its backfilled days,
    loaded straight into the warehouse (a DAG run per day would take many minutes)."""
    from citypulse_dev.sample_history import load_history

    quiet = logging.getLogger("citypulse.pipeline.load.batch")  # one line per load otherwise
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        for contract in contracts:
            last = local_yesterday(contract) - timedelta(days=DAYS)
            first = last - timedelta(weeks=HISTORY_WEEKS) + timedelta(days=1)
            load_history([contract], first, last, dsn=warehouse, views_over=contracts)
    finally:
        quiet.setLevel(level)


def publications(warehouse: str) -> list[tuple[Any, ...]]:
    """Per city: the published model, its role and its hexagons, from the model registry."""
    import psycopg2

    with psycopg2.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.hotspot_publication",))
        rows: list[tuple[Any, ...]] = []
        exists = cur.fetchone()
        if exists and exists[0]:
            cur.execute(render("publications.sql", directory=SQL_DIR))
            rows = cur.fetchall()
    conn.close()
    return rows


def summary(warehouse: str) -> list[tuple[Any, ...]]:
    import psycopg2

    with psycopg2.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute(render("summary.sql", directory=SQL_DIR))
        rows = cur.fetchall()
    conn.close()
    return rows


def admin_password() -> str:
    generated = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    try:
        return str(json.loads(generated.read_text())["admin"])
    except (OSError, ValueError, KeyError):
        return f"(see {generated})"


def start() -> None:
    if STATE_FILE.exists():
        say(f"a demo seems to be running already ({STATE_FILE}); `make stop` first")
        raise SystemExit(1)
    try:
        _start()
    except BaseException:
        say("the demo did not come up; stopping what it started (logs stay in .citypulse/)")
        stop()
        raise


def _start() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    contracts, errors = load_contracts()
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    dag_ids = [c.dag_id for c in contracts]
    yesterday = date.today() - timedelta(days=1)

    say(
        "warehouse: "
        + (
            "connection 'warehouse'"
            if os.environ.get("AIRFLOW_CONN_WAREHOUSE")
            else f"embedded PostgreSQL in {DATA_DIR / 'pgdata'}"
        )
    )
    warehouse = warehouse_server_dsn()
    env = airflow_env(metadata_db_url(warehouse))

    say(f"generating {DAYS} days of records per city for the SODA stand-in")
    loads = serve_generated_data(contracts, yesterday)
    state: dict[str, Any] = {"pids": []}
    state["pids"].append(
        spawn(
            [
                sys.executable,
                "-m",
                "citypulse_dev.standin.server",
                "--host",
                "127.0.0.1",
                "--port",
                str(STANDIN_PORT),
                "--contracts",
                str(CONTRACTS_DIR),
                *loads,
            ],
            "standin.log",
            env,
        )
    )
    STATE_FILE.write_text(json.dumps(state))
    wait_for(f"http://127.0.0.1:{STANDIN_PORT}/_standin/health", "the SODA stand-in", 120)
    say(f"SODA stand-in on http://127.0.0.1:{STANDIN_PORT}")

    say("migrating the Airflow metadata DB")
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", "socrata_api", "4", "Socrata SODA API")
    state["pids"].append(spawn([sys.executable, "-m", "airflow", "standalone"], "airflow.log", env))
    STATE_FILE.write_text(json.dumps(state))
    wait_for(f"http://127.0.0.1:{API_PORT}/api/v2/version", "the Airflow API server", 300)
    wait_for_dags(env, dag_ids)
    if HISTORY_WEEKS:
        say(f"loading {HISTORY_WEEKS} weeks of generated history before those days")
        load_sample_history(contracts, warehouse)
    for contract in contracts:
        last = local_yesterday(contract)
        first = last - timedelta(days=DAYS - 1)
        airflow(env, "dags", "unpause", contract.dag_id)
        extra = ["--max-active-runs", "2", "--reprocess-behavior", "completed"]
        # Local days, both inclusive (see citypulse.dags.backfill for why not plain dates).
        airflow(env, *backfill_command(contract.dag_id, first, last, extra)[3:])
    say(f"backfilling the last {DAYS} local days of {', '.join(dag_ids)}")
    timeout = float(os.environ.get("CITYPULSE_DEMO_TIMEOUT", 1800))
    wait_for_runs(env, dag_ids, DAYS, timeout, "backfills")
    if HISTORY_WEEKS:
        say(f"running {RETRAIN_DAG} once (every city's history is loaded now)")
        # Unpausing also schedules the latest weekly run (catchup is off), as of last Monday:
        # it runs first (one active run at a time), then this one, as of today.
        airflow(env, "dags", "unpause", RETRAIN_DAG)
        airflow(env, "dags", "trigger", RETRAIN_DAG)
        wait_until_idle(env, RETRAIN_DAG, timeout, "the hotspot retrain")

    print()
    print(f"{'city':<20}{'runs':>6}{'extracted':>11}{'rejected':>10}{'rows in warehouse':>19}")
    for dag_id, runs, extracted, rejected, rows in summary(warehouse):
        print(f"{dag_id:<20}{runs:>6}{extracted:>11}{rejected:>10}{rows:>19}")
    print()
    if HISTORY_WEEKS:
        published = {city: rest for city, *rest in publications(warehouse)}
        print(f"{'city':<20}{'published forecast':<34}{'hexagons':>9}")
        for dag_id in dag_ids:
            kind, role, cells = published.get(dag_id, ("none: see the retrain's log", "", 0))
            print(f"{dag_id:<20}{f'{kind} ({role})' if role else kind:<34}{cells:>9}")
        print()
    say(f"Airflow UI: http://localhost:{API_PORT}  login: admin / {admin_password()}")
    say("CityPulse pages (in the UI under Browse; every city run also has a Validation tab):")
    for name, route in (("health", "citypulse_health"), ("hotspot map", "citypulse_map")):
        say(f"  {name:<12} http://localhost:{API_PORT}/plugin/{route}")
    say(f"  {'charts':<12} http://localhost:{API_PORT}/plugin/citypulse_charts")
    say(f"warehouse tables and views: schema '{SCHEMA}'; logs in {DATA_DIR}")
    say("Airflow keeps running; `make stop` stops it.")


def stop() -> None:
    from citypulse.warehouse.connection import stop_embedded

    if STATE_FILE.exists():
        for pid in json.loads(STATE_FILE.read_text()).get("pids", []):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(30):
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(1)
            else:
                os.killpg(pid, signal.SIGKILL)
        STATE_FILE.unlink()
        say("stopped Airflow and the SODA stand-in")
    if stop_embedded():
        say("stopped the embedded PostgreSQL")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="citypulse_dev.demo", description=__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    args = parser.parse_args(argv)
    start() if args.action == "start" else stop()


if __name__ == "__main__":
    main()
