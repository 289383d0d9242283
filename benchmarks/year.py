"""Figure `year`: one reload run of a year of NYC 311 through `dag.test()`, at two sizes side
by side: the peak memory of the process that runs the tasks, and the run's throughput.

The stand-in portal (in this process) holds a year of records (`YEAR_FIRST` .. `YEAR_LAST`,
the same number each local day); a task process of its own (`dag.test()` of the real DAG
from `dags/`, every task in that process, as `airflow dags test` runs them) reloads the
whole year in one run (params `start_date`/`end_date`) into a fresh warehouse. Its peak RSS
(VmHWM) is every task's high-water mark: extract's pages, validate's chunks, load's COPY.
Target (issue 22): the larger size's peak <= 1.3x the smaller's. Sizes by setting
(`CITYPULSE_BENCH_YEAR_SIZES`, default 100,000 and 300,000; a year of NYC 311 is about 3
million, `CITYPULSE_BENCH_YEAR_SIZES=1000000,3000000`). The records/s of a whole run (wall
seconds of `dag.test()`, every task) is what one worker backfills at (README, Backfills).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchmarks import harness

DAG_ID = "nyc_311"
YEAR_FIRST, YEAR_LAST = date(2024, 10, 13), date(2025, 10, 12)  # 365 local days
SIZES_ENV = "CITYPULSE_BENCH_YEAR_SIZES"
DEFAULT_SIZES, SMOKE_SIZES = (100_000, 300_000), (730, 2_190)
CHILD_FLAG = "--task-process"
SERVER_STAMPS = (":created_at", ":updated_at")
TARGETS = {"rss_growth_max": 1.3}


def sizes(smoke: bool) -> list[int]:
    if smoke:
        return list(SMOKE_SIZES)
    given = os.environ.get(SIZES_ENV, "")
    return [int(s) for s in given.split(",") if s.strip()] or list(DEFAULT_SIZES)


def serve_year(standin: Any, contract: Any, n: int) -> int:
    """The dataset holds `n` records spread evenly over the year's local days (keys unique:
    each day's generated keys moved past the previous day's). Returns the days."""
    from citypulse_dev.generator import generate_records
    from citypulse_dev.standin.catalog import declare_contracts

    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])
    days = (YEAR_LAST - YEAR_FIRST).days + 1
    key = contract.key_column.wire_name
    for i in range(days):
        count = n // days + (1 if i < n % days else 0)
        if not count:
            continue
        day = YEAR_FIRST + timedelta(days=i)
        records = []
        for record in generate_records(contract, count, day=day, seed=i):
            row = {k: v for k, v in record.items() if k not in SERVER_STAMPS}
            row[key] = str(int(row[key]) % 10**7 + (i + 1) * 10**7)
            records.append(row)
        standin.put(contract.dataset_id, records, key=key)
    return days


def reload_year() -> dict[str, Any]:
    """In a fresh task process: `dag.test()` of one reload run over the whole year."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(harness.ROOT / "dags")).dags[DAG_ID]
    rss_before = harness.peak_rss_mb()
    conf = {"start_date": YEAR_FIRST.isoformat(), "end_date": YEAR_LAST.isoformat()}
    began = time.perf_counter()
    dag_run = dag.test(run_conf=conf)
    wall = time.perf_counter() - began
    tasks = {
        ti.task_id: {"seconds": round(float(ti.duration or 0.0), 3), "state": str(ti.state)}
        for ti in sorted(dag_run.get_task_instances(), key=lambda ti: ti.start_date or began)
    }
    return {
        "state": str(dag_run.state),
        "wall_s": round(wall, 3),
        "tasks": tasks,
        "rss_after_imports_mb": rss_before,
        "peak_rss_mb": harness.peak_rss_mb(),
    }


def warehouse_rows(dsn: str, contract: Any) -> int:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM citypulse.{contract.table}")
        return int(cur.fetchone()[0])


def run(smoke: bool) -> dict[str, Any]:
    from citypulse.contracts.contract import contract_by_id
    from citypulse_dev.standin.server import SodaStandIn

    wanted = sizes(smoke)
    harness.prepare_airflow_db()
    contract = contract_by_id(DAG_ID)
    began = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "load": os.getloadavg()}
    standin = SodaStandIn()
    env = {**os.environ, "SOCRATA_BASE_URL": standin.start()}
    runs: list[dict[str, Any]] = []
    try:
        for n in wanted:
            generated = time.perf_counter()
            days = serve_year(standin, contract, n)
            serve_s = time.perf_counter() - generated
            with harness.fresh_database(f"year{n}") as dsn:
                env["AIRFLOW_CONN_WAREHOUSE"] = os.environ["AIRFLOW_CONN_WAREHOUSE"]
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.year", CHILD_FLAG],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if out.returncode:
                    tail = "\n".join(out.stderr.strip().splitlines()[-20:])
                    raise RuntimeError(f"reload of {n}: exit {out.returncode}: {tail}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result["warehouse_rows"] = warehouse_rows(dsn, contract)
            result.update(records=n, days=days, standin_fill_s=round(serve_s, 1))
            result["records_per_s"] = harness.rate(n, result["wall_s"])
            runs.append(result)
    finally:
        standin.stop()
    small, large = runs[0], runs[-1]
    return {
        "dataset": DAG_ID,
        "first_day": YEAR_FIRST.isoformat(),
        "last_day": YEAR_LAST.isoformat(),
        "sizes": runs,
        "rss_growth": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2),
        "size_growth": round(large["records"] / small["records"], 2),
        "targets": TARGETS,
        "started": began["date"],
        "load_average": [round(x, 2) for x in (*began["load"], *os.getloadavg())],
        "standin_peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == CHILD_FLAG:
        harness.emit(reload_year())
    else:
        harness.figure_main("year", run)
