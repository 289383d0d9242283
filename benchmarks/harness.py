"""What every figure shares: the environment, a fresh warehouse database, stage timers, peak
RSS and the one JSON line a figure prints.

Airflow and CityPulse read their settings once, at import: figures import them inside
functions, after `figure_main` has made sure the environment is in place.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "include"
# A libpq DSN of a server where the benchmarks may create and drop databases.
SERVER_ENV = "CITYPULSE_BENCH_PG"
DEFAULT_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
# The scratch folder of one benchmark session (set by the runner for every figure).
WORKDIR_ENV = "CITYPULSE_BENCH_WORKDIR"
EMBEDDED_FOLDER = "pgserver"
# A migrated Airflow metadata DB (SQLite file) that figures copy instead of migrating again.
AIRFLOW_DB_TEMPLATE_ENV = "CITYPULSE_BENCH_AIRFLOW_DB"


def _reachable(dsn: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


def resolve_server(workdir: Path) -> tuple[str, bool]:
    """The server to benchmark against, and whether it is an embedded one started here."""
    wanted = os.environ.get(SERVER_ENV, DEFAULT_SERVER)
    if _reachable(wanted):
        return wanted, False
    sys.path.insert(0, str(INCLUDE))
    from citypulse.warehouse.connection import embedded_dsn

    return embedded_dsn(workdir / EMBEDDED_FOLDER), True


def figure_env(workdir: Path, server: str) -> dict[str, str]:
    """The environment a figure runs in: its own data, Airflow home and SQLite metadata DB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    for name in ("SOCRATA_APP_TOKEN", "SOCRATA_BASE_URL", "CITYPULSE_CONTRACTS_DIR"):
        env.pop(name, None)
    paths = [str(INCLUDE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update(
        {
            SERVER_ENV: server,
            WORKDIR_ENV: str(workdir),
            "PYTHONPATH": os.pathsep.join(paths),
            "CITYPULSE_DATA_DIR": str(workdir / "data"),
            "CITYPULSE_HTTP_BACKOFF_SECONDS": "0.05",
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir / 'airflow.db'}",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "GX_ANALYTICS_ENABLED": "False",
        }
    )
    return env


@contextmanager
def session(keep: bool = False) -> Iterator[tuple[Path, str]]:
    """A scratch folder and a PostgreSQL server for one run; an embedded server stops after."""
    workdir = Path(tempfile.mkdtemp(prefix="citypulse-bench-"))
    server, embedded = resolve_server(workdir)
    try:
        yield workdir, server
    finally:
        if embedded:
            from citypulse.warehouse.connection import stop_embedded

            stop_embedded(workdir / EMBEDDED_FOLDER)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def server() -> str:
    return os.environ.get(SERVER_ENV, DEFAULT_SERVER)


def workdir(name: str) -> Path:
    """A folder of the session's scratch space for one figure."""
    path = Path(os.environ[WORKDIR_ENV]) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _admin(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@contextmanager
def fresh_database(label: str) -> Iterator[str]:
    """A new database for one figure, wired in as the `warehouse` connection; dropped after."""
    from psycopg2.extensions import make_dsn, parse_dsn

    name = f"citypulse_bench_{label}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    dsn = make_dsn(**{**parse_dsn(server()), "dbname": name})
    from citypulse.warehouse.connection import airflow_conn_json

    os.environ["AIRFLOW_CONN_WAREHOUSE"] = airflow_conn_json(dsn)
    try:
        yield dsn
    finally:
        os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_airflow_db(env: dict[str, str] | None = None) -> float:
    """A migrated SQLite metadata DB with the `socrata_api` pool for this figure (a copy of
    the runner's template when there is one); returns the seconds it took."""
    import subprocess

    env = dict(os.environ if env is None else env)
    began = time.perf_counter()
    template = env.get(AIRFLOW_DB_TEMPLATE_ENV)
    if template and Path(template).exists():
        target = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
    else:
        for command in (["db", "migrate"], ["pools", "set", "socrata_api", "4", "Socrata API"]):
            subprocess.run(
                [sys.executable, "-m", "airflow", *command],
                check=True,
                capture_output=True,
                env=env,
            )
    return round(time.perf_counter() - began, 2)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux's VmHWM, which starts afresh at exec; ru_maxrss (elsewhere) is inherited across
    fork and exec, so a task process started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Stages:
    """Wall seconds per named stage, accumulated over calls, in the order first seen."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    @contextmanager
    def patched(self, targets: dict[str, tuple[Any, str]]) -> Iterator[None]:
        """Time every call of `module.function` as stage `name`, for each name: (module, attr).

        The real functions run; callers that look them up at call time see the timed ones.
        """
        originals = {name: getattr(module, attr) for name, (module, attr) in targets.items()}
        for name, (module, attr) in targets.items():
            setattr(module, attr, self._timed(name, originals[name]))
        try:
            yield
        finally:
            for name, (module, attr) in targets.items():
                setattr(module, attr, originals[name])

    def _timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.time(name):
                result = function(*args, **kwargs)
                # A generator does its work when consumed: consume it inside the timer.
                return list(result) if inspect.isgenerator(result) else result

        return timed

    def rounded(self, digits: int = 3) -> dict[str, float]:
        return {name: round(value, digits) for name, value in self.seconds.items()}


def rate(rows: int, seconds: float) -> float:
    """Rows per second, rounded (0 when nothing was timed)."""
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def emit(result: dict[str, Any]) -> None:
    """Print the figure's one JSON line on stdout (logs go to stderr)."""
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def figure_main(figure: str, run: Callable[[bool], dict[str, Any]]) -> None:
    """Command line of one figure module: `python -m benchmarks.<figure> [--smoke]`.

    Run on its own (not from the runner), it sets up a session of its own first.
    """
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{figure}")
    parser.add_argument("--smoke", action="store_true", help="a tiny size, to prove it runs")
    args = parser.parse_args()
    if WORKDIR_ENV in os.environ:
        emit({"figure": figure, "smoke": args.smoke, **run(args.smoke)})
        return
    with session() as (scratch, pg):
        os.environ.update(figure_env(scratch, pg))
        sys.path[:0] = [str(INCLUDE), str(ROOT)]
        emit({"figure": figure, "smoke": args.smoke, **run(args.smoke)})
