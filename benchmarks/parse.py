"""Figure `parse`: what parsing `dags/` costs the scheduler, beside a one-task DAG file.

Per-file durations come from `airflow dags report -o json` (what Airflow itself measures),
each folder in a CLI process of its own, the two folders alternating so a noisy machine
shifts both alike; medians are reported. A separate interpreter parses `dags/` and lists the
heavy modules the parse imported. Targets: no heavy module, and the factory file within
1.5x of the one-task file.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import harness

FACTORY_FILE = "city_pipelines.py"
ONE_TASK_FILE = "one_task.py"
FULL_REPEATS, SMOKE_REPEATS = 3, 1
# The list of heavy modules, plus the other libraries tasks import lazily.
HEAVY = ("pandas", "great_expectations", "sklearn", "h3", "sodapy", "numpy", "psycopg2", "scipy")
ONE_TASK_DAG = '''"""The smallest useful DAG file: the yardstick for parse time."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="one_task", schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False):

    @task
    def hello() -> str:
        return "hello"

    hello()
'''
HEAVY_SCRIPT = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
began = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "seconds": time.perf_counter() - began,
    "dags": len(bag.dags),
    "errors": len(bag.import_errors),
    "heavy": sorted(m for m in sys.argv[2].split(",") if m in sys.modules),
}))
"""
_DURATION = re.compile(r"^(\d+):(\d+):(\d+(?:\.\d+)?)$")


def seconds_of(duration: str) -> float:
    """`0:00:00.230784` (as `dags report` prints a timedelta) in seconds."""
    match = _DURATION.match(duration)
    if match is None:
        raise ValueError(f"unexpected duration {duration!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def dags_report(folder: Path) -> dict[str, tuple[float, int]]:
    """`airflow dags report` of one folder: file name -> (parse seconds, DAGs in it)."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "report", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    line = next(x for x in reversed(out.stdout.splitlines()) if x.startswith("["))
    return {
        Path(row["file"]).name: (seconds_of(row["duration"]), int(row["dag_num"]))
        for row in json.loads(line)
    }


def heavy_imports(folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", HEAVY_SCRIPT, str(folder), ",".join(HEAVY)],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(smoke: bool) -> dict[str, Any]:
    repeats = SMOKE_REPEATS if smoke else FULL_REPEATS
    airflow_db_s = harness.prepare_airflow_db()
    yardstick = harness.workdir("parse") / "one_task_dags"
    yardstick.mkdir(exist_ok=True)
    (yardstick / ONE_TASK_FILE).write_text(ONE_TASK_DAG, encoding="utf-8")
    dags = harness.ROOT / "dags"
    samples: dict[str, list[float]] = {}
    dag_counts: dict[str, int] = {}
    for _ in range(repeats):
        for folder in (yardstick, dags):
            for name, (seconds, count) in dags_report(folder).items():
                samples.setdefault(name, []).append(seconds)
                dag_counts[name] = count
    medians = {name: round(statistics.median(values), 4) for name, values in samples.items()}
    heavy = heavy_imports(dags)
    ratio = medians[FACTORY_FILE] / medians[ONE_TASK_FILE]
    return {
        "repeats": repeats,
        "file_seconds": medians,
        "dags_per_file": dag_counts,
        "samples": {name: [round(v, 4) for v in values] for name, values in samples.items()},
        "factory_vs_one_task": round(ratio, 2),
        "factory_per_dag_vs_one_task": round(ratio / dag_counts[FACTORY_FILE], 2),
        "heavy_modules_at_parse": heavy["heavy"],
        "dagbag_fill_seconds": round(heavy["seconds"], 3),
        "dags": heavy["dags"],
        "import_errors": heavy["errors"],
        "airflow_db_setup_s": airflow_db_s,
        "targets": {"factory_vs_one_task_max": 1.5, "heavy_modules_at_parse": []},
    }


if __name__ == "__main__":
    harness.figure_main("parse", run)
