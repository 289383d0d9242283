"""One side of the `stream` figure in a process of its own, as a worker runs a task: a fresh
interpreter, so its peak RSS (VmHWM) is that task's alone.

    python -m benchmarks.task_process validate IN.json OUT.json   # citypulse.dags.steps.validate
    python -m benchmarks.task_process load IN.json OUT.json       # citypulse.dags.steps.load
    python -m benchmarks.task_process copy IN.json OUT.json       # raw COPY (+ ON CONFLICT)

IN.json holds the task's input (the manifest, or what `copy` needs); OUT.json receives the
result, the seconds of the call (imports paid before the clock starts), the seconds of the
suite's checks within it, the RSS once imported and the peak RSS.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import harness


def rss_mb() -> float:
    """This process's resident set size now, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def warm_up(task: str, dag_id: str) -> None:
    """What the task pays once per process, before the clock starts: the contracts, the
    storage root, and validate's imports (pandas, Arrow, h3; GX under its engine) or load's
    (psycopg2, the connection lookup) only."""
    from citypulse.contracts.contract import contract_by_id
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import warehouse_dsn

    contract_by_id(dag_id)
    StorageRoot.configured().base  # noqa: B018  (imports Airflow's object storage)

    if task == "validate":
        from citypulse import settings

        if settings.VALIDATE_ENGINE == "gx":  # the vectorized engine never imports GX
            import great_expectations  # noqa: F401
        import h3  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.csv
        import pyarrow.json  # noqa: F401

        from citypulse.pipeline.validate import suite  # noqa: F401
    else:
        from citypulse.pipeline.load import batch  # noqa: F401

        warehouse_dsn()


def run_task(task: str, given: dict[str, Any]) -> dict[str, Any]:
    """The real validate or load task on `given["manifest"]`, timed without its imports."""
    from citypulse.dags import steps

    warm_up(task, given["dag_id"])
    imported = rss_mb()
    stages = harness.Stages()
    began = time.perf_counter()
    if task == "validate":
        from citypulse.pipeline.validate import suite

        with stages.patched({"checks": (suite.SuiteRunner, "_validate")}):
            result = steps.validate(given["dag_id"], given["manifest"], {})
    else:
        result = steps.load(given["dag_id"], given["manifest"], given["context"])
    seconds = time.perf_counter() - began
    return {
        "result": result,
        "seconds": round(seconds, 3),
        "checks_s": round(stages.seconds.get("checks", 0.0), 3),
        "rss_imported_mb": imported,
    }


def raw_copy(given: dict[str, Any]) -> dict[str, Any]:
    """COPY the typed rows (the COPY parts validate wrote) into a twin of the project's
    table: straight in for a first load; into a staging table, then INSERT .. ON CONFLICT DO
    UPDATE, for updates. The floor any load path on the same rows can reach."""
    import psycopg2

    table, twin, key = given["table"], given["twin"], given["key"]
    columns = ", ".join(given["columns"])
    began = time.perf_counter()
    with psycopg2.connect(given["dsn"]) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        if given["mode"] == "first":
            cur.execute(f"DROP TABLE IF EXISTS citypulse.{twin}")
            cur.execute(f"CREATE TABLE citypulse.{twin} (LIKE citypulse.{table} INCLUDING ALL)")
            target = f"citypulse.{twin}"
        else:
            cur.execute(
                f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {columns} "
                f"FROM citypulse.{twin} WITH NO DATA"
            )
            target = "stage"
        started = time.perf_counter()
        rows = 0
        for path in given["parts"]:
            with open(path, "rb") as handle:
                cur.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)", handle)
            rows += cur.rowcount
        if given["mode"] != "first":
            assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in given["columns"] if c != key)
            cur.execute(
                f"INSERT INTO citypulse.{twin} ({columns}) SELECT {columns} FROM stage "
                f"ON CONFLICT ({key}) DO UPDATE SET {assignments}"
            )
    conn.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "setup_s": round(started - began, 3)}


def main(argv: list[str]) -> int:
    task, source, target = argv
    given = json.loads(Path(source).read_text())
    out = raw_copy(given) if task == "copy" else run_task(task, given)
    out["peak_rss_mb"] = harness.peak_rss_mb()
    Path(target).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
