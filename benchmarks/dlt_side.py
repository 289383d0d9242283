"""The `dlt` side of the `stream` figure: the same NDJSON records loaded by dlt, as a data
engineer would tune it (postgres destination, merge on the key, csv/COPY loader, two
normalize workers, column types hinted from the contract).

Runs in the benchmark's own environment (`.venv-bench-dlt`, from
`benchmarks/requirements-dlt.txt`), never the product's, and imports nothing of CityPulse:

    .venv-bench-dlt/bin/python benchmarks/dlt_side.py IN.json OUT.json

IN.json: {"parts": [...], "dsn": ..., "table": ..., "key": ..., "columns": {field: dlt type},
"workdir": ...}. OUT.json: rows, seconds (pipeline.run: extract, normalize, load), each
step's seconds, the main process's peak RSS and its largest worker's.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Records handed to dlt at a time (a list per yield: dlt's fastest path for Python dicts).
BATCH_ROWS = 10_000


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def records(parts: list[str]) -> Iterator[list[dict[str, Any]]]:
    import msgspec

    decode = msgspec.json.Decoder().decode
    batch: list[dict[str, Any]] = []
    for part in parts:
        with open(part, "rb") as handle:
            for line in handle:
                batch.append(decode(line))
                if len(batch) == BATCH_ROWS:
                    yield batch
                    batch = []
    if batch:
        yield batch


def main(source: str, target: str) -> int:
    given = json.loads(Path(source).read_text())
    workdir = Path(given["workdir"])
    os.environ.update(
        {
            "DLT_DATA_DIR": str(workdir / "data"),
            "DLT_PIPELINE_DIR": str(workdir / "pipelines"),
            "RUNTIME__LOG_LEVEL": "WARNING",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "NORMALIZE__WORKERS": "2",
            "NORMALIZE__LOADER_FILE_FORMAT": "csv",
            # Files of 100,000 items: the two normalize workers and the loader get several.
            "EXTRACT__DATA_WRITER__FILE_MAX_ITEMS": "100000",
            "NORMALIZE__DATA_WRITER__FILE_MAX_ITEMS": "100000",
            "DATA_WRITER__BUFFER_MAX_ITEMS": "10000",
        }
    )
    import dlt
    from dlt.destinations import postgres

    hints = [
        {"name": name, "data_type": kind, "nullable": name != given["key"]}
        for name, kind in given["columns"].items()
    ]
    resource = dlt.resource(
        records(given["parts"]),
        name=given["table"],
        primary_key=given["key"],
        write_disposition={"disposition": "merge", "strategy": "upsert"},
        columns=hints,
    )
    pipeline = dlt.pipeline(
        pipeline_name="citypulse_bench",
        destination=postgres(credentials=given["dsn"]),
        dataset_name="dlt_bench",
    )
    began = time.perf_counter()
    pipeline.run(resource, loader_file_format="csv")
    seconds = time.perf_counter() - began
    trace = pipeline.last_trace
    steps = {
        step.step: round((step.finished_at - step.started_at).total_seconds(), 3)
        for step in trace.steps
        if step.finished_at is not None
    }
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT count(*) FROM {given['table']}")[0][0]
    children = resource_children_mb()
    Path(target).write_text(
        json.dumps(
            {
                "rows": int(rows),
                "seconds": round(seconds, 3),
                "steps_s": steps,
                "peak_rss_mb": peak_rss_mb(),
                "worker_peak_rss_mb": children,
                "dlt": dlt.__version__,
            }
        )
    )
    return 0


def resource_children_mb() -> float:
    """The largest peak RSS of a finished child process (the normalize workers)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
