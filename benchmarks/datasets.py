"""Figure `datasets`: many datasets on one machine (100; 10 in a smoke run).

A contracts folder of copies of the four contracts under new dag ids, tables and dataset ids
(every fourth without coordinates, bbox and `incidents:` mapping) feeds `dags/`. Its parse is
measured as the DAG processor parses it, `airflow dags report -o json` in a fresh process
whose loaded objects are frozen for the garbage collector first (as the DAG processor does),
with the parse cache cold (its file removed first) and warm, beside as many one-task DAG
files (an `EmptyOperator` DAG per file); medians of the repeats, the folders alternating.
Each side's total over its DAGs is the issue's per-DAG figure; both sides are measured at
one DAG as well, so that the slope (what each further DAG costs) and the fixed part (paid
once per parse however many DAGs: imports, the first `Asset`'s provider lookup) show apart.
Then a real `airflow dag-processor` and `airflow scheduler` run on a fresh PostgreSQL
metadata database with every DAG unpaused at creation and every pool at 0 slots (runs are
created, no task runs): how long until every DAG is serialized and has its scheduled run.
Target: the per-DAG parse cost within 1.5x of the one-task files'.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.parse import file_report

FULL_DATASETS, SMOKE_DATASETS = 100, 10
FULL_REPEATS, SMOKE_REPEATS = 3, 1
UNPLACED_EVERY = 4  # every fourth copy has no coordinates, bbox or incidents mapping
CITY_FILE = "city_pipelines.py"
TARGET_RATIO = 1.5
SCHEDULER_TIMEOUT_S = 600
ONE_TASK_DAG = '''"""One EmptyOperator: the yardstick DAG file."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id={dag_id!r}, schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False):
    EmptyOperator(task_id="nothing")
'''


# The city DAGs' shape in plain Airflow, no CityPulse code: their three Params (the same
# schemas, which Airflow validates per DAG) and six EmptyOperators wired as the six steps.
SAME_SHAPE_FILE = "same_shape.py"
SAME_SHAPE_DAGS = '''"""{count} DAGs of the city DAGs' shape in plain Airflow."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

DATE = r"^\\d{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$"
DATES = {{"type": ["null", "string"], "pattern": DATE, "format": "date"}}

for n in range({count}):
    with DAG(
        dag_id=f"same_shape_{{n:03d}}",
        schedule="@daily",
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params={{
            "start_date": Param(None, description="from", **DATES),
            "end_date": Param(None, description="to", **DATES),
            "reconcile": Param(False, type="boolean", description="reconcile"),
        }},
    ) as dag:
        validate = EmptyOperator(task_id="validate")
        reconcile = EmptyOperator(task_id="reconcile")
        EmptyOperator(task_id="extract") >> validate >> [EmptyOperator(task_id="load"), reconcile]
        dag.get_task("load") >> reconcile >> EmptyOperator(task_id="build_views")
        EmptyOperator(task_id="housekeeping")
    globals()[dag.dag_id] = dag
'''


def same_shape_folder(count: int) -> Path:
    folder = harness.workdir("datasets") / f"same_shape_{count}"
    folder.mkdir(exist_ok=True)
    (folder / SAME_SHAPE_FILE).write_text(SAME_SHAPE_DAGS.format(count=count), encoding="utf-8")
    return folder


def contracts_folder(count: int) -> Path:
    from citypulse_dev.contract_copies import write_copies

    folder = harness.workdir("datasets") / f"contracts_{count}"
    shutil.rmtree(folder, ignore_errors=True)
    write_copies(folder, count, unplaced_every=UNPLACED_EVERY)
    return folder


def one_task_folder(count: int) -> Path:
    folder = harness.workdir("datasets") / f"one_task_{count}"
    folder.mkdir(exist_ok=True)
    for n in range(count):
        dag_id = f"one_task_{n:03d}"
        (folder / f"{dag_id}.py").write_text(ONE_TASK_DAG.format(dag_id=dag_id), encoding="utf-8")
    return folder


def city_folder() -> Path:
    """A DAGs folder holding only the factory file (a symlink: it still finds the package)."""
    folder = harness.workdir("datasets") / "city_dags"
    folder.mkdir(exist_ok=True)
    link = folder / CITY_FILE
    if not link.is_symlink():
        link.symlink_to(harness.ROOT / "dags" / CITY_FILE)
    return folder


def parse_seconds(folder: Path, contracts: Path, cache: Path) -> tuple[float, int, int]:
    """Seconds `dags report` spent on the folder's files, and the DAGs and tasks it found."""
    os.environ["CITYPULSE_CONTRACTS_DIR"] = str(contracts)
    os.environ["CITYPULSE_PARSE_CACHE_FILE"] = str(cache)
    report = file_report(folder, gc_frozen=True).values()
    return sum(r[0] for r in report), sum(r[1] for r in report), sum(r[2] for r in report)


def measure_parse(count: int, repeats: int) -> dict[str, Any]:
    """Each side at `count` DAGs and at one DAG (suffix `_1`): the difference is the cost of
    the other `count - 1` DAGs, free of what a side pays once however many DAGs it has."""
    cities = city_folder()
    setups = {
        suffix: (contracts_folder(n), one_task_folder(n), same_shape_folder(n))
        for suffix, n in (("", count), ("_1", 1))
    }
    samples: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    tasks: dict[str, int] = {}
    for _ in range(repeats):
        for suffix, (contracts, yardstick, same_shape) in setups.items():
            cache = harness.workdir("datasets") / f"cache{suffix}" / "dags.json"
            cache.unlink(missing_ok=True)
            for side, folder in (
                ("cold", cities),
                ("warm", cities),
                ("one_task", yardstick),
                ("same_shape", same_shape),
            ):
                seconds, dags, task_count = parse_seconds(folder, contracts, cache)
                samples.setdefault(side + suffix, []).append(seconds)
                found[side + suffix], tasks[side + suffix] = dags, task_count
    total = {side: statistics.median(values) for side, values in samples.items()}
    sides = ("cold", "warm", "one_task", "same_shape")
    per_dag = {side: total[side] / max(found[side], 1) for side in sides}
    # The slope between one DAG and `count`: what each further DAG costs.
    marginal = {
        side: (total[side] - total[f"{side}_1"]) / max(found[side] - found[f"{side}_1"], 1)
        for side in sides
    }
    return {
        "datasets": count,
        "unplaced": count // UNPLACED_EVERY,
        "gc_frozen": True,
        "dags_found": found,
        "tasks_per_dag": {side: tasks[side] // max(found[side], 1) for side in sides},
        "parse_total_s": {side: round(v, 3) for side, v in total.items()},
        "per_dag_ms": {side: round(v * 1000, 2) for side, v in per_dag.items()},
        "ratio_cold": round(per_dag["cold"] / per_dag["one_task"], 2),
        "ratio_warm": round(per_dag["warm"] / per_dag["one_task"], 2),
        "marginal_per_dag_ms": {side: round(v * 1000, 2) for side, v in marginal.items()},
        "fixed_s": {side: round(total[f"{side}_1"] - marginal[side], 3) for side in sides},
        "marginal_ratio_cold": round(marginal["cold"] / marginal["one_task"], 2),
        "marginal_ratio_warm": round(marginal["warm"] / marginal["one_task"], 2),
        "ratio_same_shape": round(per_dag["same_shape"] / per_dag["one_task"], 2),
        "marginal_ratio_same_shape": round(marginal["same_shape"] / marginal["one_task"], 2),
        "samples": {side: [round(v, 3) for v in values] for side, values in samples.items()},
    }


def _metadata_url(dsn: str) -> str:
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(dsn)
    return (
        f"postgresql+psycopg2://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', 5432)}/{parts['dbname']}"
    )


def _scheduler_env(contracts: Path, meta: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _metadata_url(meta),
        "AIRFLOW__CORE__DAGS_FOLDER": str(harness.ROOT / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{_free_port()}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "CITYPULSE_CONTRACTS_DIR": str(contracts),
        "CITYPULSE_PARSE_CACHE_FILE": str(home / "parse-cache.json"),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _counts(meta: str, dag_ids: list[str]) -> tuple[int, int]:
    """DAGs serialized and DAGs with a scheduled run, among `dag_ids`."""
    import psycopg2

    with psycopg2.connect(meta) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(DISTINCT dag_id) FROM serialized_dag WHERE dag_id = ANY(%s)), "
            "(SELECT count(DISTINCT dag_id) FROM dag_run "
            " WHERE dag_id = ANY(%s) AND run_type = 'scheduled')",
            (dag_ids, dag_ids),
        )
        serialized, with_runs = cur.fetchone()
    conn.close()
    return int(serialized), int(with_runs)


def _airflow(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, check=True, capture_output=True
    )


def scheduler_runs(count: int) -> dict[str, Any]:
    """Every DAG of `count` datasets serialized and given its scheduled run by a real
    dag-processor and scheduler: the seconds each took (pools at 0: no task runs)."""
    from citypulse.contracts.contract import load_contracts

    contracts = contracts_folder(count)
    dag_ids = [c.dag_id for c in load_contracts(contracts)[0]]
    home = harness.workdir("datasets") / f"scheduler_{uuid.uuid4().hex[:6]}"
    home.mkdir()
    with harness.fresh_database("scheduler_meta") as meta:
        env = _scheduler_env(contracts, meta, home)
        began = time.perf_counter()
        _airflow(env, "db", "migrate")
        migrate_s = time.perf_counter() - began
        for pool in ("default_pool", "socrata_api"):
            _airflow(env, "pools", "set", pool, "0", "no task runs in this benchmark")
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "airflow", component],
                env=env,
                stdout=(home / f"{component}.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for component in ("dag-processor", "scheduler")
        ]
        started = time.perf_counter()
        serialized_s = runs_s = None
        serialized = with_runs = 0
        try:
            while time.perf_counter() - started < SCHEDULER_TIMEOUT_S:
                serialized, with_runs = _counts(meta, dag_ids)
                now = time.perf_counter() - started
                if serialized_s is None and serialized == len(dag_ids):
                    serialized_s = now
                if with_runs == len(dag_ids):
                    runs_s = now
                    break
                if any(p.poll() is not None for p in processes):
                    break
                time.sleep(1)
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    return {
        "dags": len(dag_ids),
        "serialized": serialized,
        "with_scheduled_run": with_runs,
        "migrate_s": round(migrate_s, 1),
        "all_serialized_s": None if serialized_s is None else round(serialized_s, 1),
        "all_runs_s": None if runs_s is None else round(runs_s, 1),
    }


def run(smoke: bool) -> dict[str, Any]:
    count = SMOKE_DATASETS if smoke else FULL_DATASETS
    harness.prepare_airflow_db()
    parse = measure_parse(count, SMOKE_REPEATS if smoke else FULL_REPEATS)
    from datetime import UTC, datetime

    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **parse,
        "scheduler": scheduler_runs(count),
        "targets": {"per_dag_vs_one_task_max": TARGET_RATIO},
    }


if __name__ == "__main__":
    harness.figure_main("datasets", run)
