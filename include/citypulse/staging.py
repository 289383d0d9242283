"""The files that pass between tasks of one run, in the run's own folder (never XCom).

extract.ndjson   the portal's records, one JSON object a line, as sent
accepted.csv     typed rows ready for COPY (CSV: NULL unquoted empty, text quoted), in
                 `copy_columns` order
rejects.ndjson   {"record": raw, "reason": "...", "key": "..."} a line
"""

from __future__ import annotations

import gc
import json
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from citypulse.contracts import Contract
from citypulse.settings import RUNS_DIR

EXTRACT_FILE = "extract.ndjson"
ACCEPTED_FILE = "accepted.csv"
REJECTS_FILE = "rejects.ndjson"
DERIVED_STAGE_COLUMNS = ("event_time", "h3_r8", "h3_r7")
# Written beside them for the COPY: the event time as local time and zone name (PostgreSQL
# turns it into UTC itself, exactly as `event_time AT TIME ZONE zone`) and the run's id.
LOAD_COLUMNS = ("event_time_utc", "cp_run_id")
# The layout of accepted.csv, named in the validate task's result: a load handed a file of
# another layout (validated before an upgrade) types the extract file again.
ACCEPTED_FORMAT = 2
# NDJSON is decoded this many bytes at a time (plus the rest of the last line).
READ_CHUNK_BYTES = 4 << 20
# Arrow reads the extract file in blocks of this many bytes (two threads share them).
READ_BLOCK_BYTES = 8 << 20
# Accepted rows are written this many at a time.
WRITE_CHUNK_ROWS = 50_000


def run_dir(dag_id: str, run_id: str, root: Path = RUNS_DIR) -> Path:
    """The run's private folder; run ids become safe file names."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    path = root / dag_id / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def stage_columns(contract: Contract) -> list[str]:
    """The typed columns: the contract's and those derived from them, in order."""
    return [c.name for c in contract.columns] + list(DERIVED_STAGE_COLUMNS)


def copy_columns(contract: Contract) -> list[str]:
    """Columns of the COPY file, in order: the typed ones, then `LOAD_COLUMNS`."""
    return stage_columns(contract) + list(LOAD_COLUMNS)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while 10**5 acyclic records are built or read: otherwise it
    rescans the growing heap again and again and finds nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    """Each line's JSON value, in order; blank lines are skipped.

    Decoded a few MB at a time with msgspec, several times faster than `json`; a chunk that
    msgspec refuses (NaN, lone surrogates, huge exponents) is decoded by `json` instead. The
    cyclic GC stays paused until the generator is exhausted or closed: callers collect 10**5
    acyclic records, which it would otherwise rescan over and over.
    """
    import msgspec

    decode_lines = msgspec.json.Decoder().decode_lines
    with path.open("rb") as handle, gc_paused():
        while chunk := handle.read(READ_CHUNK_BYTES):
            chunk += handle.readline()
            try:
                records = decode_lines(chunk)
            except msgspec.DecodeError:
                records = [json.loads(line) for line in chunk.decode().splitlines() if line.strip()]
            yield from records


def write_accepted(frame: Any, contract: Contract, path: Path, run_id: str) -> int:
    """Write typed rows (a pandas DataFrame) of run `run_id` as COPY-ready CSV; returns the
    row count.

    Arrow's CSV writer, column at a time in C++: every string value is quoted, a NULL is an
    empty unquoted field (PostgreSQL's CSV default), timestamps are written as
    `YYYY-MM-DD HH:MM:SS.ffffff`. Text columns typed from an Arrow table are handed over
    without a copy.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    table = pa.Table.from_pandas(frame.loc[:, stage_columns(contract)], preserve_index=False)
    local = pc.cast(table.column("event_time"), pa.string())
    zoned = pc.binary_join_element_wise(local, f" {contract.timezone}", "")
    table = table.append_column("event_time_utc", zoned)
    table = table.append_column("cp_run_id", pa.repeat(pa.scalar(run_id), len(table)))
    options = pa_csv.WriteOptions(
        include_header=False, quoting_style="needed", batch_size=WRITE_CHUNK_ROWS
    )
    with gc_paused():
        pa_csv.write_csv(table, str(path), write_options=options)
    return len(frame)


def key_range(frame: Any, contract: Contract) -> list[Any] | None:
    """The lowest and highest key of typed rows (JSON-able, for XCom), or None if none."""
    keys = frame[contract.key].dropna()
    if keys.empty:
        return None
    bounds = [keys.min(), keys.max()]
    return [b.item() if hasattr(b, "item") else b for b in bounds]


def read_wire_table(path: Path, contract: Contract) -> Any:
    """The extract file as an Arrow table (the contract's wire fields as strings, boolean and
    other fields as Arrow infers them), or None when Arrow cannot read it so: a value of
    another JSON type in a contract field, a line that is not a JSON object, a field whose
    type varies.
    The caller then reads the records one by one (`read_ndjson`)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    if path.stat().st_size == 0:
        return None
    # Boolean fields are left to inference: portals send them as JSON booleans or as text.
    schema = pa.schema(
        [pa.field(c.wire_name, pa.string()) for c in contract.columns if c.type != "boolean"]
    )
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pa_json.read_json(
            str(path),
            read_options=pa_json.ReadOptions(block_size=READ_BLOCK_BYTES),
            parse_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def read_lines_at(path: Path, positions: Iterable[int]) -> dict[int, Any]:
    """The JSON values of the given non-blank lines (0-based, as `read_ndjson` counts them)."""
    wanted = set(positions)
    found: dict[int, Any] = {}
    if not wanted:
        return found
    last = max(wanted)
    index = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            if index in wanted:
                found[index] = json.loads(line)
            if index == last:
                break
            index += 1
    return found


def write_rejects(rows: Iterator[dict[str, Any]], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count
