"""Figure `stream`: CityPulse's validate and load tasks, `dlt` and raw COPY side by side on
the same NYC-311 records as the API sends them, at each size of `CITYPULSE_BENCH_SIZES`
(default 200,000; `CITYPULSE_BENCH_SIZES=200000,2000000 make bench` adds 2 million).

For each size: the records in extract parts of `PART_ROWS`, as extract writes them; a first
load (all inserts), then the same keys edited at the portal (all updates). Every side runs
in a process of its own (a task process, dlt's own environment), so each peak RSS is that
side's alone:
- CityPulse: `tasks.validate` then `tasks.load`, each in its own process; rows/s of both
  (every second of each task) and without the suite's checks (timed inside validate); on
  first loads validate also runs under `CITYPULSE_VALIDATE_ENGINE=gx` (its own process,
  beforehand), for GX's time and memory beside the vectorized engine's and the same report;
- raw COPY: the COPY parts validate wrote, COPYed into a twin of the table (updates: into a
  staging table, then INSERT .. ON CONFLICT DO UPDATE);
- dlt: `benchmarks/dlt_side.py` in `.venv-bench-dlt` (made from
  `benchmarks/requirements-dlt.txt` when missing).
Records of 2 million are 10 copies of 200,000 generated ones, each copy with its own keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.load import DAG_ID, prepare_inputs, scheduled_context

SIZES_ENV = "CITYPULSE_BENCH_SIZES"
DEFAULT_SIZES, SMOKE_SIZES = (200_000,), (2_000,)
BASE_ROWS = 200_000  # generated once; larger sizes are copies with other keys
DLT_VENV = harness.ROOT / ".venv-bench-dlt"
DLT_REQUIREMENTS = harness.ROOT / "benchmarks" / "requirements-dlt.txt"
# dlt's type for each column family of the contract (its hints).
DLT_TYPES = {
    "text": "text",
    "integer": "bigint",
    "number": "double",
    "boolean": "bool",
    "timestamp": "timestamp",
}
# Targets of issues 15 and 22 (ratios within one run).
TARGETS = {
    "rss_growth_max": 1.3,
    "first_vs_copy_min": 0.6,
    "update_vs_copy_min": 0.7,
    "vs_dlt_min": 3.0,
    "validate_peak_vs_dlt_max": 2.0,
}


def sizes(smoke: bool) -> list[int]:
    if smoke:
        return list(SMOKE_SIZES)
    given = os.environ.get(SIZES_ENV, "")
    return [int(s) for s in given.split(",") if s.strip()] or list(DEFAULT_SIZES)


def dlt_python(smoke: bool) -> Path | None:
    """The dlt environment's interpreter, made first when missing (a smoke run goes without
    dlt instead: None)."""
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        if smoke:
            return None
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(DLT_REQUIREMENTS)],
            check=True,
        )
    return python


def write_parts(base: Path, n: int, key: str, folder: Path, part_rows: int) -> list[Path]:
    """`n` records in parts of `part_rows`: `base`'s records over and over, each copy's keys
    and row ids moved past the previous copy's."""
    import msgspec

    decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    written, copy = 0, 0
    handle = None
    while written < n:
        with base.open("rb") as source:
            for line in source:
                if written == n:
                    break
                if written % part_rows == 0:
                    if handle is not None:
                        handle.close()
                    parts.append(folder / f"part-{len(parts):05d}.ndjson")
                    handle = parts[-1].open("wb")
                if copy:
                    record = decode(line)
                    record[key] = str(int(record[key]) + copy * 10**8)
                    record[":id"] = f"{record[':id']}-{copy}"
                    line = encode(record) + b"\n"
                assert handle is not None
                handle.write(line)
                written += 1
        copy += 1
    if handle is not None:
        handle.close()
    return parts


def in_process(
    command: list[str],
    given: dict[str, Any],
    folder: Path,
    name: str,
    env: dict[str, str] | None = None,
) -> Any:
    """Run one side in its own process; what it wrote to its OUT.json."""
    source, target = folder / f"{name}.in.json", folder / f"{name}.out.json"
    source.write_text(json.dumps(given, default=str))
    done = subprocess.run(
        [*command, str(source), str(target)],
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    if done.returncode:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"{name}: exit {done.returncode}: {tail}")
    return json.loads(target.read_text())


def citypulse_pass(
    contract: Any, parts: list[Path], run_id: str, folder: Path, gx_reference: bool
) -> tuple[dict[str, Any], list[Path]]:
    """The real validate and load tasks on the parts, each in a task process of its own;
    with `gx_reference`, validate first under `CITYPULSE_VALIDATE_ENGINE=gx` too (its own
    process), to set its time and memory beside the vectorized engine's and compare reports."""
    from citypulse.pipeline.manifest import Extracted, Part, RunManifest
    from citypulse.pipeline.windows import window_for_interval
    from citypulse.storage import StorageRoot, run_prefix

    context = scheduled_context(contract, run_id)
    root = StorageRoot.configured()
    prefix = run_prefix(DAG_ID, run_id)
    keys = []
    rows = 0
    for i, path in enumerate(parts):
        key = f"{prefix}/extract/part-{i:05d}.ndjson"
        target = root.local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(path, target)
        n = sum(1 for _ in path.open("rb"))
        keys.append(Part(key=key, rows=n))
        rows += n
    window = window_for_interval(
        context["data_interval_start"], context["data_interval_end"], contract.timezone
    )
    extracted = Extracted(
        parts=tuple(keys),
        rows=rows,
        window_rows=rows,
        change_rows=0,
        pages=-(-rows // contract.page_size),
        retries=0,
        portal_rows=rows,
    )
    manifest = RunManifest.of_window(DAG_ID, run_id, prefix, window, extracted, started=0.0)
    command = [sys.executable, "-m", "benchmarks.task_process"]
    given = {"dag_id": DAG_ID, "manifest": manifest.to_xcom()}
    reference = None
    if gx_reference:
        engine = {"CITYPULSE_VALIDATE_ENGINE": "gx"}
        reference = in_process([*command, "validate"], given, folder, f"{run_id}.gx", engine)
    validated = in_process([*command, "validate"], given, folder, f"{run_id}.validate")
    given = {"dag_id": DAG_ID, "manifest": validated["result"], "context": context}
    loaded = in_process([*command, "load"], given, folder, f"{run_id}.load")
    accepted = [
        root.local_path(part["key"]) for part in validated["result"]["validated"]["accepted"]
    ]
    seconds = validated["seconds"] + loaded["seconds"]
    without_checks = seconds - validated["checks_s"]
    result = loaded["result"]
    gx_engine = None
    if reference is not None:
        gx_engine = {
            "validate_s": reference["seconds"],
            "checks_s": reference["checks_s"],
            "validate_peak_rss_mb": reference["peak_rss_mb"],
            "validate_rss_imported_mb": reference["rss_imported_mb"],
            "rows_per_s": harness.rate(rows, reference["seconds"] + loaded["seconds"]),
            "same_report": reference["result"]["validated"]["report"]
            == validated["result"]["validated"]["report"],
        }
    return {
        "records": rows,
        "inserted": result["inserted"],
        "updated": result["updated"],
        "rejected": result["rejected"],
        "validate_s": validated["seconds"],
        "checks_s": validated["checks_s"],
        "load_s": loaded["seconds"],
        "rows_per_s": harness.rate(rows, seconds),
        "rows_per_s_without_checks": harness.rate(rows, without_checks),
        "validate_peak_rss_mb": validated["peak_rss_mb"],
        "validate_rss_imported_mb": validated["rss_imported_mb"],
        "load_peak_rss_mb": loaded["peak_rss_mb"],
        "load_rss_imported_mb": loaded["rss_imported_mb"],
        "gx_engine": gx_engine,
    }, accepted


def copy_pass(
    contract: Any, dsn: str, accepted: list[Path], mode: str, folder: Path
) -> dict[str, Any]:
    from citypulse.pipeline.run_files import copy_columns

    given = {
        "dsn": dsn,
        "table": contract.table,
        "twin": "bench_raw_copy",
        "key": contract.key,
        "columns": copy_columns(contract),
        "parts": [str(p) for p in accepted],
        "mode": mode,
    }
    out = in_process(
        [sys.executable, "-m", "benchmarks.task_process", "copy"], given, folder, f"copy.{mode}"
    )
    out["rows_per_s"] = harness.rate(out["rows"], out["seconds"])
    return dict(out)


def dlt_pass(
    contract: Any, dsn: str, parts: list[Path], name: str, folder: Path, smoke: bool
) -> dict[str, Any]:
    from psycopg2.extensions import parse_dsn

    from citypulse.contracts.column_types import column_type

    libpq = parse_dsn(dsn)
    url = (
        f"postgresql://{libpq.get('user', 'postgres')}:{libpq.get('password', '')}@"
        f"{libpq.get('host', '127.0.0.1')}:{libpq.get('port', '5432')}/{libpq['dbname']}"
    )
    given = {
        "parts": [str(p) for p in parts],
        "dsn": url,
        "table": contract.table,
        "key": contract.key_column.wire_name,
        "columns": {c.wire_name: DLT_TYPES[column_type(c.type).family] for c in contract.columns},
        "workdir": str(folder / "dlt"),
    }
    script = str(harness.ROOT / "benchmarks" / "dlt_side.py")
    python = dlt_python(smoke)
    if python is None:
        return {"skipped": f"no {DLT_VENV.name} (make bench creates it)", "rows": 0, "seconds": 0}
    return dict(in_process([str(python), script], given, folder, f"dlt.{name}"))


def one_size(
    contract: Any, n: int, base: tuple[Path, Path], folder: Path, smoke: bool
) -> dict[str, Any]:
    from citypulse.settings import PART_ROWS

    key = contract.key_column.wire_name
    first = write_parts(base[0], n, key, folder / "first", PART_ROWS)
    edited = write_parts(base[1], n, key, folder / "edited", PART_ROWS)
    out: dict[str, Any] = {"records": n, "parts": len(first)}
    with harness.fresh_database(f"stream{n}") as dsn:
        import psycopg2

        from benchmarks.load import settle

        conn = psycopg2.connect(dsn)
        try:
            for mode, parts in (("first", first), ("update", edited)):
                settle(conn)
                project, accepted = citypulse_pass(
                    contract, parts, f"bench_{mode}_{n}", folder, gx_reference=mode == "first"
                )
                settle(conn)
                copy = copy_pass(contract, dsn, accepted, mode, folder)
                settle(conn)
                dlt = dlt_pass(contract, dsn, parts, mode, folder, smoke)
                dlt["rows_per_s"] = harness.rate(n, dlt["seconds"])
                out[mode] = {"citypulse": project, "raw_copy": copy, "dlt": dlt}
        finally:
            conn.close()
    for mode in ("first", "update"):
        sides = out[mode]
        project = sides["citypulse"]["rows_per_s"]
        sides["vs_copy"] = round(project / sides["raw_copy"]["rows_per_s"], 3)
        dlt = sides["dlt"]["rows_per_s"] or None  # None: dlt skipped
        sides["vs_dlt"] = round(project / dlt, 2) if dlt else None
        gx_engine = sides["citypulse"]["gx_engine"]
        if gx_engine is not None:
            sides["gx_engine_vs_copy"] = round(
                gx_engine["rows_per_s"] / sides["raw_copy"]["rows_per_s"], 3
            )
    return out


def run(smoke: bool) -> dict[str, Any]:
    from citypulse.contracts.contract import contract_by_id

    contract = contract_by_id(DAG_ID)
    wanted = sizes(smoke)
    began = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "load": os.getloadavg()}
    folder = harness.workdir("stream")
    base = prepare_inputs(contract, min(BASE_ROWS, max(wanted)), folder)
    results = [one_size(contract, n, base, folder / str(n), smoke) for n in wanted]
    summary: dict[str, Any] = {
        "dataset": DAG_ID,
        "sizes": results,
        "targets": TARGETS,
        "started": began["date"],
        "load_average": [round(x, 2) for x in (*began["load"], *os.getloadavg())],
    }
    if len(results) > 1:
        small, large = results[0], results[-1]

        def peak(r: dict[str, Any]) -> float:
            sides = [r[m]["citypulse"] for m in ("first", "update")]
            return max(max(s["validate_peak_rss_mb"], s["load_peak_rss_mb"]) for s in sides)

        summary["rss_growth"] = round(peak(large) / peak(small), 2)
    return summary


if __name__ == "__main__":
    harness.figure_main("stream", run)
