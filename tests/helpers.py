"""Test helpers: seed the stand-in with generated days and run a city DAG for a local day."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


def contracts_with_unplaced(folder: Path, dag_id: str = "chicago_unplaced") -> Any:
    """`folder` holding the project's four contracts and a fifth: a copy of Chicago's without
    coordinates, bbox and `incidents:` mapping, under its own dag_id, table and dataset id.
    Returns the fifth contract."""
    import shutil

    import yaml

    from citypulse.contracts.contract import load_contract
    from citypulse.settings import CONTRACTS_DIR
    from citypulse_dev.contract_copies import contract_copy

    folder.mkdir(parents=True, exist_ok=True)
    for source in CONTRACTS_DIR.glob("*.yaml"):
        shutil.copy(source, folder / source.name)
    raw = yaml.safe_load((CONTRACTS_DIR / "chicago_crime.yaml").read_text(encoding="utf-8"))
    path = folder / f"{dag_id}.yaml"
    path.write_text(yaml.safe_dump(contract_copy(raw, dag_id, "unpl-aced", placed=False)))
    return load_contract(path)


def airflow_cli(
    *args: str, contracts: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`airflow <args>` in a process of its own that reads the contracts of `contracts` (the
    project's settings are read once per process) with a parse cache of its own."""
    env = {
        **os.environ,
        "CITYPULSE_CONTRACTS_DIR": str(contracts),
        "CITYPULSE_PARSE_CACHE_FILE": str(contracts.parent / f"{contracts.name}-parse.json"),
    }
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fresh_dataset(standin: Any, contract: Any) -> None:
    """The contract's dataset in the stand-in, emptied and declared (its column types known,
    so numbers sort as numbers before any record lands)."""
    from citypulse_dev.standin.catalog import declare_contracts

    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])


def task_tries(dag_run: Any) -> dict[str, tuple[str, int]]:
    """Each task's state and the try it ended on."""
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def seed_days(standin: Any, contract: Any, days: list[date], seed: int = 7) -> dict[date, Any]:
    """Generate and serve `days` of records; returns each day's GeneratedDay."""
    from citypulse_dev.generator import generate_day

    generated = {}
    for day in days:
        batch = generate_day(contract, day, seed=seed)
        standin.put(contract.dataset_id, batch.records, key=contract.key_column.wire_name)
        generated[day] = batch
    return generated


def logical_date_for(contract: Any, day: date) -> datetime:
    """The logical date whose data interval is the local calendar day `day`."""
    zone = ZoneInfo(contract.timezone)
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def run_city_day(dag: Any, contract: Any, day: date, **kwargs: Any) -> Any:
    """Run the whole DAG in-process for one local day; returns the DagRun."""
    return dag.test(logical_date=logical_date_for(contract, day), **kwargs)


def by_id(contracts: list[Any], dag_id: str) -> Any:
    """The contract of one DAG."""
    return next(c for c in contracts if c.dag_id == dag_id)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_hostname() -> str:
    """The worker name a test gave this process (Airflow's `[core] hostname_callable`)."""
    import os

    return os.environ.get("CITYPULSE_TEST_HOSTNAME") or socket.getfqdn()


def write_incident_counts(
    dsn: str, rows: list[tuple[str, str | None, str | None, date, int]]
) -> None:
    """Stand in for the `incident_versions` view with a table: for each (city, h3_r8, h3_r7,
    local_day, n), n records that were always current (loaded at -infinity, never replaced)."""
    import psycopg2
    from psycopg2.extras import execute_values

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS citypulse")
        cur.execute("DROP TABLE IF EXISTS citypulse.incident_versions")
        cur.execute(
            "CREATE TABLE citypulse.incident_versions (city text, source_key text, "
            "local_day date, h3_r8 text, h3_r7 text, valid_from timestamptz, "
            "valid_to timestamptz, event_time_local timestamp)"
        )
        cur.execute(
            "CREATE TEMP TABLE counts (city text, h3_r8 text, h3_r7 text, local_day date, n int)"
        )
        execute_values(cur, "INSERT INTO counts VALUES %s", rows, page_size=5000)
        cur.execute(
            "INSERT INTO citypulse.incident_versions SELECT c.city, "
            "concat_ws('/', c.h3_r8, c.local_day, k), c.local_day, c.h3_r8, c.h3_r7, "
            "'-infinity', 'infinity', c.local_day FROM counts c, generate_series(1, c.n) k"
        )
    conn.close()


class HeaderRecorder(ThreadingHTTPServer):
    """Another server on this host: records every request (method, path, headers, body) and
    answers 200 with an empty JSON list, which a careless client would read as "no rows"."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length).decode(errors="replace"),
                    }
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            do_GET = do_POST = _record

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def ui_get(*paths: str) -> list[Any]:
    """GET each path of the CityPulse UI's app in process, as a logged-in user (Airflow's own
    login is test_ui's business); the responses, in order."""
    from fastapi.testclient import TestClient

    from citypulse.ui.app import app, get_user

    app.dependency_overrides[get_user] = lambda: object()
    try:
        client = TestClient(app)
        return [client.get(path) for path in paths]
    finally:
        app.dependency_overrides.clear()
