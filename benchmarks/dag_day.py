"""Figure `dag_day`: one city day through `dag.test()`, wall seconds per task.

The real DAG from `dags/`, the SODA stand-in over HTTP, a fresh warehouse database and a
migrated SQLite metadata DB. The first run pays each task's imports (pandas, GX, sodapy, h3)
in this process; the second, on the next day, shows the warm cost (full runs only).
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import harness

DAG_ID = "nyc_311"
FIRST_DAY = date(2025, 10, 13)
FULL_RECORDS, SMOKE_RECORDS = 10_000, 200
SERVER_STAMPS = (":created_at", ":updated_at")


def logical_date_for(contract: Any, day: date) -> datetime:
    """The logical date whose data interval is the local calendar day `day`."""
    zone = ZoneInfo(contract.timezone)
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def run_day(dag: Any, contract: Any, day: date) -> dict[str, Any]:
    """One `dag.test()` of a local day: wall seconds and each task's seconds and state."""
    began = time.perf_counter()
    dag_run = dag.test(logical_date=logical_date_for(contract, day))
    wall = time.perf_counter() - began
    tasks = {
        ti.task_id: {"seconds": round(float(ti.duration or 0.0), 3), "state": str(ti.state)}
        for ti in sorted(dag_run.get_task_instances(), key=lambda ti: ti.start_date or began)
    }
    return {"state": str(dag_run.state), "wall_s": round(wall, 3), "tasks": tasks}


def run(smoke: bool) -> dict[str, Any]:
    n = SMOKE_RECORDS if smoke else FULL_RECORDS
    airflow_db_s = harness.prepare_airflow_db()
    from airflow.dag_processing.dagbag import DagBag

    from citypulse.contracts.contract import contract_by_id, load_contracts
    from citypulse_dev.generator import generate_records
    from citypulse_dev.standin.catalog import declare_contracts
    from citypulse_dev.standin.server import SodaStandIn

    contract = contract_by_id(DAG_ID)
    days = [FIRST_DAY, FIRST_DAY + timedelta(days=1)]
    standin = SodaStandIn()
    os.environ["SOCRATA_BASE_URL"] = standin.start()
    try:
        declare_contracts(standin, load_contracts()[0])
        for seed, day in enumerate(days):
            generated = generate_records(contract, n, day=day, seed=seed)
            records = [{k: v for k, v in r.items() if k not in SERVER_STAMPS} for r in generated]
            standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)
        with harness.fresh_database("dag_day"):
            dag = DagBag(dag_folder=str(harness.ROOT / "dags")).dags[DAG_ID]
            cold = run_day(dag, contract, days[0])
            warm = None if smoke else run_day(dag, contract, days[1])
    finally:
        standin.stop()
        os.environ.pop("SOCRATA_BASE_URL", None)
    return {
        "dataset": DAG_ID,
        "records": n,
        "first_run": cold,
        "second_run": warm,
        "airflow_db_setup_s": airflow_db_s,
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("dag_day", run)
