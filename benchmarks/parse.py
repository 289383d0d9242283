"""Figure `parse`: what parsing `dags/` costs the scheduler, beside a one-task DAG file.

Per-file durations come from `airflow dags report -o json` (what Airflow itself measures),
each folder in a CLI process of its own, the folders alternating so a noisy machine shifts
them alike; medians are reported. Each file of `dags/` is measured alone, as the DAG processor
parses it. Another folder holds the factory's four DAGs written out by hand with TaskFlow
`@task`, the way the SDK's tutorials build them. A separate interpreter parses `dags/` and
lists the heavy modules the parse imported. Targets: no heavy module, and the factory file
within 1.5x of the one-task file.
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
FULL_REPEATS, SMOKE_REPEATS = 5, 1
# The list of heavy modules, plus the other libraries tasks import lazily.
HEAVY = (
    "pandas",
    "great_expectations",
    "sklearn",
    "h3",
    "sodapy",
    "numpy",
    "psycopg2",
    "scipy",
    "pyarrow",
)
HAND_WRITTEN_FILE = "hand_written.py"
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
# The factory's DAGs written out by hand with TaskFlow (no CityPulse import, no parse cache,
# no deadline alert or failure callback): what the same DAGs cost built the tutorial way.
HAND_WRITTEN_HEAD = '''"""The city DAGs written out by hand with TaskFlow `@task`."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, task

DATE = r"^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$"
'''
HAND_WRITTEN_DAG = """
with DAG(
    dag_id={dag_id!r},
    description={title!r},
    doc_md={doc!r},
    schedule=CronDataIntervalTimetable({schedule!r}, timezone={timezone!r}),
    start_date=datetime({year}, {month}, {day}, tzinfo=ZoneInfo({timezone!r})),
    catchup=False,
    max_active_runs=4,
    tags={tags!r},
    default_args={{"owner": {owner!r}, "retries": {retries}, "retry_delay": timedelta(seconds=60),
                  "retry_exponential_backoff": 2.0, "max_retry_delay": timedelta(minutes=30)}},
    params={{
        "start_date": Param(None, type=["null", "string"], pattern=DATE, description="from"),
        "end_date": Param(None, type=["null", "string"], pattern=DATE, description="to"),
        "reconcile": Param(False, type="boolean", description="reconcile"),
    }},
    render_template_as_native_obj=True,
):

    @task(task_id="extract", pool="socrata_api")
    def extract(**context):
        return {{}}

    @task(task_id="validate")
    def validate(extracted):
        return extracted

    @task(task_id="load", outlets=[Asset(name={asset!r}, uri={uri!r}, group="citypulse")])
    def load(validated, **context):
        return validated

    @task(task_id="reconcile", pool="socrata_api")
    def reconcile(validated, **context):
        return validated

    @task(task_id="build_views")
    def build_views(reconciled):
        return []

    validated = validate(extract())
    reconciled = reconcile(validated)
    load(validated) >> reconciled
    build_views(reconciled)
"""


def hand_written_dags() -> str:
    """The source of HAND_WRITTEN_FILE, from the contracts as the factory reads them."""
    from citypulse.dags.factory import doc_md, table_asset
    from citypulse.dags.specs import city_dag_specs

    specs, _ = city_dag_specs(cache_file=None)
    blocks = []
    for spec in specs:
        asset = table_asset(spec.table)
        blocks.append(
            HAND_WRITTEN_DAG.format(
                dag_id=spec.dag_id,
                title=spec.title,
                doc=doc_md(spec),
                schedule=spec.schedule,
                timezone=spec.timezone,
                year=spec.start_date.year,
                month=spec.start_date.month,
                day=spec.start_date.day,
                tags=sorted({"citypulse", *spec.tags}),
                owner=spec.owner,
                retries=spec.retries,
                asset=asset.name,
                uri=asset.uri,
            )
        )
    return HAND_WRITTEN_HEAD + "".join(blocks)


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
    return {name: (seconds, dags) for name, (seconds, dags, _) in file_report(folder).items()}


# `airflow dags report` with the garbage collector's view of the process as in the DAG
# processor: its manager calls `gc.freeze()` once Airflow is loaded (before forking the
# processes that parse files), so a parse's collections never scan Airflow's own objects.
# Without it, a file allocating much (many DAGs) pays for scanning the CLI's whole heap.
FROZEN_REPORT = """
import gc, runpy, sys
import airflow.cli.commands.dag_command, airflow.dag_processing.dagbag
gc.freeze()
sys.argv = ["airflow", "dags", "report", "-o", "json"]
runpy.run_module("airflow", run_name="__main__")
"""


def file_report(folder: Path, *, gc_frozen: bool = False) -> dict[str, tuple[float, int, int]]:
    """`airflow dags report` of one folder: file name -> (parse seconds, DAGs, tasks); with
    `gc_frozen`, in a process whose loaded objects are frozen as the DAG processor's are."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    command = (
        ["-c", FROZEN_REPORT] if gc_frozen else ["-m", "airflow", "dags", "report", "-o", "json"]
    )
    out = subprocess.run(
        [sys.executable, *command],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    line = next(x for x in reversed(out.stdout.splitlines()) if x.startswith("["))
    return {
        Path(row["file"]).name: (
            seconds_of(row["duration"]),
            int(row["dag_num"]),
            int(row["task_num"]),
        )
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
    taskflow = harness.workdir("parse") / "hand_written_dags"
    taskflow.mkdir(exist_ok=True)
    (taskflow / HAND_WRITTEN_FILE).write_text(hand_written_dags(), encoding="utf-8")
    dags = harness.ROOT / "dags"
    # The DAG processor parses each file in a process of its own, so each file of dags/ is
    # measured alone too (a symlink, so it still finds include/ beside dags/): in one process
    # the first file would pay the lazy SDK imports the others then find loaded.
    singles = []
    for source in sorted(dags.glob("*.py")):
        single = harness.workdir("parse") / f"alone_{source.stem}"
        single.mkdir(exist_ok=True)
        link = single / source.name
        if not link.is_symlink():
            link.symlink_to(source)
        singles.append(single)
    samples: dict[str, list[float]] = {}
    dag_counts: dict[str, int] = {}
    for _ in range(repeats):
        for folder in (yardstick, taskflow, *singles):
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
        "hand_written_vs_one_task": round(medians[HAND_WRITTEN_FILE] / medians[ONE_TASK_FILE], 2),
        "factory_vs_hand_written": round(medians[FACTORY_FILE] / medians[HAND_WRITTEN_FILE], 2),
        "heavy_modules_at_parse": heavy["heavy"],
        "dagbag_fill_seconds": round(heavy["seconds"], 3),
        "dags": heavy["dags"],
        "import_errors": heavy["errors"],
        "airflow_db_setup_s": airflow_db_s,
        "targets": {"factory_vs_one_task_max": 1.5, "heavy_modules_at_parse": []},
    }


if __name__ == "__main__":
    harness.figure_main("parse", run)
