"""Figure `load`: NYC-311 records as the API sends them, through the project's real validate
and load tasks, side by side with raw COPY and `pandas.to_sql` of the same typed rows.

Timed project path: `citypulse.dags.steps.validate` (read NDJSON, type, H3, GX, write the COPY file
and the rejects) then `citypulse.dags.steps.load` (COPY to staging, upsert, rejects, audit: one
transaction), each stage timed by wrapping the real functions. The target compares the path
without the GX suite (its own figure, `validate`) with raw COPY into an identical table.
Two passes: the first load (all inserts), then the same keys changed at the portal (all
updates). A rerun of unchanged records (nothing written, the fastest of the three when it
was measured while building this figure) is left out to keep `make bench` under ten minutes.
"""

from __future__ import annotations

import gc
import io
import os
import shutil
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from benchmarks import harness

DAG_ID = "nyc_311"
DAY = date(2025, 10, 13)
FULL_ROWS, SMOKE_ROWS = 200_000, 200
# `to_sql` is timed on the first rows of the same table only: at ~2k rows/s all 200,000 would
# take minutes, and its rate does not improve with size (fixed-size INSERT batches).
TO_SQL_ROWS = 50_000
# Stages of the tasks, timed by wrapping the real functions: stage -> (module, attribute).
# The Arrow path (`read_table`, `type_table`) runs for files of wire strings; the record
# path (`read_ndjson`, `type_records`) only when Arrow cannot read the file so.
STAGES = {
    "read_table": ("staging", "read_wire_table"),
    "read_ndjson": ("staging", "read_ndjson"),
    "type_table": ("typing_rules", "type_table"),
    "typing": ("typing_rules", "type_records"),
    "h3": ("typing_rules", "h3_cells"),
    "gx_suite": ("suite", "_validate"),
    "write_accepted": ("staging", "write_accepted"),
    "write_rejects": ("staging", "write_rejects"),
    "copy_and_upsert": ("load", "upsert_accepted"),
    "quarantine_rejects": ("load", "quarantine_rejects"),
}
# Socrata's system fields as the API sends them with `$$exclude_system_fields=false`.
CREATED_AT, UPDATED_AT, EDITED_AT = (
    "2025-10-14T05:00:01.000Z",
    "2025-10-14T05:00:01.000Z",
    "2025-10-20T05:00:01.000Z",
)
# Stages nested inside another one (not added again when summing).
NESTED = {"h3"}


def prepare_inputs(contract: Any, n: int, folder: Path) -> tuple[Path, Path]:
    """Two extract files of `n` records of DAY as the API sends them: as first published,
    and after every record was edited at the portal (one descriptive text field changed,
    `:updated_at` moved on), so that reloading it updates every row."""
    from citypulse_dev.generator import generate_records, write_ndjson

    field = next(
        c.wire_name
        for c in contract.columns
        if c.type == "text" and not c.required and not c.values and c.name != contract.key
    )
    records = [
        {
            ":id": record.get(":id") or f"row-{i:08x}",
            ":created_at": CREATED_AT,
            ":updated_at": UPDATED_AT,
            **{k: v for k, v in record.items() if not k.startswith(":")},
        }
        for i, record in enumerate(generate_records(contract, n, day=DAY, seed=1))
    ]
    first, edited = folder / "first.ndjson", folder / "edited.ndjson"
    write_ndjson(records, first)
    for record in records:
        record[field] = f"{record.get(field) or ''} (edited)"
        record[":updated_at"] = EDITED_AT
    write_ndjson(records, edited)
    return first, edited


def scheduled_context(contract: Any, run_id: str) -> dict[str, Any]:
    """The task context of the scheduled run whose data interval is the local day DAY."""
    zone = ZoneInfo(contract.timezone)
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=zone)
    return {
        "run_id": run_id,
        "data_interval_start": start,
        "data_interval_end": start + timedelta(days=1),
        "params": {},
    }


def replayed_extract(contract: Any, source: Path, context: dict[str, Any]) -> dict[str, Any]:
    """The real extract task's result, its pages replayed from `source` (the portal's side
    is the `extract` figure)."""
    from citypulse.dags import steps
    from citypulse.pipeline import extract

    with source.open("rb") as handle:
        n = sum(1 for _ in handle)

    def replay(contract: Any, window: Any, root: Any, prefix: str, **_: Any) -> Any:
        from citypulse.pipeline.manifest import Extracted, Part

        key = f"{prefix}/part-00000.ndjson"
        target = root.local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        parts = (Part(key=key, rows=n),)
        pages = -(-n // contract.page_size)
        return Extracted(
            parts=parts,
            rows=n,
            window_rows=n,
            change_rows=0,
            pages=pages,
            retries=0,
            portal_rows=n,
        )

    with mock.patch.object(extract, "extract_window", replay):
        result: dict[str, Any] = steps.extract(DAG_ID, None, context)
    return result


def project_pass(contract: Any, source: Path, run_id: str) -> dict[str, Any]:
    """One run of the real validate and load tasks over an extract file; seconds per stage."""
    from citypulse.dags import steps
    from citypulse.pipeline import run_files
    from citypulse.pipeline.load import batch
    from citypulse.pipeline.validate import suite, typing_rules

    context = scheduled_context(contract, run_id)
    extracted = replayed_extract(contract, source, context)
    os.sync()  # the extract task's file is written out, as it is by the time validate runs
    n = extracted["extracted"]["rows"]
    modules = {
        "staging": run_files,
        "typing_rules": typing_rules,
        "suite": suite.SuiteRunner,
        "load": batch,
    }
    stages = harness.Stages()
    targets = {name: (modules[module], attr) for name, (module, attr) in STAGES.items()}
    gc.collect()  # start every pass from the same heap
    with stages.patched(targets):
        with stages.time("validate_task"):
            validated = steps.validate(DAG_ID, extracted, {})
        with stages.time("load_task"):
            result = steps.load(DAG_ID, validated, context)
    seconds = stages.seconds
    total = seconds["validate_task"] + seconds["load_task"]
    without_gx = total - seconds["gx_suite"]
    timed = sum(v for k, v in seconds.items() if k not in NESTED and not k.endswith("_task"))
    breakdown = stages.rounded()
    # typing without H3, whichever path ran
    typing = seconds.get("typing", 0.0) + seconds.get("type_table", 0.0)
    breakdown.pop("type_table", None)
    breakdown["typing"] = round(typing - seconds.get("h3", 0.0), 3)
    breakdown["other"] = round(total - timed, 3)  # task glue, commit, audit, enforce
    return {
        "records": n,
        "inserted": result["inserted"],
        "updated": result["updated"],
        "unchanged": result["unchanged"],
        "rejected": result["rejected"],
        "seconds": round(without_gx, 3),
        "rows_per_s": harness.rate(n, without_gx),
        "seconds_with_gx": round(total, 3),
        "rows_per_s_with_gx": harness.rate(n, total),
        "stages_s": breakdown,
    }


def typed_rows(conn: Any, table: str) -> tuple[list[str], bytes, int]:
    """The project table's columns (all but the defaulted ones) and its rows as COPY CSV."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'citypulse' AND table_name = %s AND column_default IS NULL "
            "AND column_name <> 'cp_deleted_at' ORDER BY ordinal_position",
            (table,),
        )
        columns = [row[0] for row in cur.fetchall()]
        buffer = io.BytesIO()
        cur.copy_expert(
            f"COPY (SELECT {', '.join(columns)} FROM citypulse.{table}) TO STDOUT "
            "WITH (FORMAT csv, NULL '\\N')",
            buffer,
        )
        cur.execute(f"SELECT count(*) FROM citypulse.{table}")
        rows = int(cur.fetchone()[0])
    return columns, buffer.getvalue(), rows


def twin_table(conn: Any, table: str, twin: str) -> None:
    """An empty table identical to the project's: columns, defaults, key and indexes."""
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS citypulse.{twin}")
        cur.execute(f"CREATE TABLE citypulse.{twin} (LIKE citypulse.{table} INCLUDING ALL)")
    conn.commit()


def raw_copy(conn: Any, table: str, columns: list[str], data: bytes, rows: int) -> dict[str, Any]:
    """Plain COPY of the already-typed rows into an identical empty table."""
    twin_table(conn, table, "bench_raw_copy")
    began = time.perf_counter()
    with conn.cursor() as cur:
        cur.copy_expert(
            f"COPY citypulse.bench_raw_copy ({', '.join(columns)}) FROM STDIN "
            "WITH (FORMAT csv, NULL '\\N')",
            io.BytesIO(data),
        )
    conn.commit()
    seconds = time.perf_counter() - began
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": harness.rate(rows, seconds)}


def to_sql(conn: Any, dsn: str, table: str, columns: list[str]) -> dict[str, Any]:
    """`DataFrame.to_sql` (default method) of the same typed rows (the first TO_SQL_ROWS, in
    key order) into an identical empty table."""
    import pandas as pd
    import psycopg2
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        "postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn)
    )
    frame = pd.read_sql_query(
        f"SELECT {', '.join(columns)} FROM citypulse.{table} ORDER BY 1 LIMIT {TO_SQL_ROWS}",
        engine,
    )
    twin_table(conn, table, "bench_to_sql")
    began = time.perf_counter()
    frame.to_sql("bench_to_sql", engine, schema="citypulse", if_exists="append", index=False)
    seconds = time.perf_counter() - began
    engine.dispose()
    rows = len(frame)
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": harness.rate(rows, seconds)}


def settle(conn: Any) -> None:
    """A CHECKPOINT (and an OS sync) before each timed side: dirty pages and WAL from the
    previous side, from creating the database or from writing the input files are flushed
    now, not by writeback that lands in the middle of the next measurement."""
    import psycopg2

    os.sync()
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    except psycopg2.Error:  # not allowed for this role: measure without
        pass
    conn.rollback()


def warm_up() -> None:
    """Pay the one-off imports (pandas, h3, GX, Airflow's connection lookup) before timing."""
    import great_expectations  # noqa: F401
    import h3  # noqa: F401
    import pandas  # noqa: F401

    from citypulse.pipeline.load import batch  # noqa: F401
    from citypulse.warehouse.connection import warehouse_dsn

    warehouse_dsn()


def run(smoke: bool) -> dict[str, Any]:
    import psycopg2

    from citypulse.contracts.contract import contract_by_id

    n = SMOKE_ROWS if smoke else FULL_ROWS
    contract = contract_by_id(DAG_ID)
    first, edited = prepare_inputs(contract, n, harness.workdir("load"))
    with harness.fresh_database("load") as dsn:
        warm_up()
        conn = psycopg2.connect(dsn)
        try:
            # Raw COPY runs right after the first pass and again at the end, and counts with
            # the mean of both: a load spike from elsewhere then hits both sides alike.
            settle(conn)
            inserts = project_pass(contract, first, "bench_load_insert")
            columns, data, rows = typed_rows(conn, contract.table)
            settle(conn)
            copies = [raw_copy(conn, contract.table, columns, data, rows)]
            pandas = to_sql(conn, dsn, contract.table, columns)
            settle(conn)
            updates = project_pass(contract, edited, "bench_load_update")
            settle(conn)
            copies.append(raw_copy(conn, contract.table, columns, data, rows))
        finally:
            conn.close()
    seconds = sum(c["seconds"] for c in copies) / len(copies)
    copy = {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": harness.rate(rows, seconds),
        "samples_s": [c["seconds"] for c in copies],
    }
    return {
        "dataset": DAG_ID,
        "records": n,
        "columns_written": len(columns),
        "project_insert": inserts,
        "project_update": updates,
        "raw_copy": copy,
        "to_sql": pandas,
        "ratio_vs_copy": round(inserts["rows_per_s"] / copy["rows_per_s"], 3),
        "ratio_vs_to_sql": round(inserts["rows_per_s"] / pandas["rows_per_s"], 2),
        "update_ratio_vs_copy": round(updates["rows_per_s"] / copy["rows_per_s"], 3),
        "targets": {"ratio_vs_copy_min": 0.5, "ratio_vs_to_sql_min": 5.0},
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("load", run)
