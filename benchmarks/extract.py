"""Figure `extract`: records served by the SODA stand-in over HTTP, through the real extract
task (`citypulse.dags.steps.extract`: sodapy, 50,000-row pages streamed to NDJSON).

Each size runs in a task process of its own, so its peak RSS is the task's alone (the
stand-in and its records live in this process). Target: peak RSS grows by less than 1.5x
from the small to the large size (streaming, not accumulating).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from typing import Any

from benchmarks import harness

DAG_ID = "nyc_311"
DAY = date(2025, 10, 6)
FULL_SIZES, SMOKE_SIZES = (100_000, 500_000), (200, 1_000)
CHILD_FLAG = "--task-process"
SERVER_STAMPS = (":created_at", ":updated_at")


def serve(standin: Any, contract: Any, size: int, day: date) -> None:
    """The dataset holds exactly `size` records, all of local day `day`."""
    from citypulse_dev.generator import generate_records
    from citypulse_dev.standin.catalog import declare_contracts

    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])
    generated = generate_records(contract, size, day=day, seed=size)
    records = [{k: v for k, v in r.items() if k not in SERVER_STAMPS} for r in generated]
    del generated
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)


def extract_once(day: str) -> dict[str, Any]:
    """In a fresh task process: the real extract task for one local day."""
    from citypulse.dags import steps
    from citypulse.portal.client import app_token
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import warehouse_dsn

    app_token(), warehouse_dsn()  # Airflow's connection lookup, imported once before timing
    rss_before = harness.peak_rss_mb()
    began = time.perf_counter()
    result = steps.extract(
        DAG_ID,
        None,
        {"run_id": f"bench_extract_{day}", "params": {"start_date": day, "end_date": day}},
    )
    seconds = time.perf_counter() - began
    StorageRoot.configured().remove(result["prefix"])
    extracted = result["extracted"]
    return {
        "rows": extracted["rows"],
        "pages": extracted["pages"],
        "seconds": round(seconds, 3),
        "rows_per_s": harness.rate(extracted["rows"], seconds),
        "rss_after_imports_mb": rss_before,
        "peak_rss_mb": harness.peak_rss_mb(),
    }


def task_process(day: date, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.extract", CHILD_FLAG, day.isoformat()],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(smoke: bool) -> dict[str, Any]:
    from citypulse.contracts.contract import contract_by_id
    from citypulse_dev.standin.server import SodaStandIn

    sizes = SMOKE_SIZES if smoke else FULL_SIZES
    contract = contract_by_id(DAG_ID)
    standin = SodaStandIn()
    env = {**os.environ, "SOCRATA_BASE_URL": standin.start()}
    runs: dict[str, dict[str, Any]] = {}
    try:
        with harness.fresh_database("extract"):
            env["AIRFLOW_CONN_WAREHOUSE"] = os.environ["AIRFLOW_CONN_WAREHOUSE"]
            for size in sizes:
                # One size at a time: generated days of this size would share keys.
                serve(standin, contract, size, DAY)
                runs[str(size)] = task_process(DAY, env)
    finally:
        standin.stop()
    small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
    return {
        "dataset": DAG_ID,
        "page_size": contract.page_size,
        "sizes": runs,
        "rss_growth": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "targets": {"rss_growth_max": 1.5},
        "standin_peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        harness.emit(extract_once(sys.argv[2]))
    else:
        harness.figure_main("extract", run)
