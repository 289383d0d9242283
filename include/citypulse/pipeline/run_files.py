"""The files that pass between tasks of one run, under the run's prefix in the storage root
(`citypulse.storage`); XCom carries only their keys, in the run manifest.

extract/part-NNNNN.ndjson  the portal's records, one JSON object a line, as sent, in parts
accepted/part-NNNNN.csv    typed rows ready for COPY (CSV: NULL unquoted empty, text quoted),
                           in `copy_columns` order; one part per chunk validate checked
rejects/part-NNNNN.ndjson  {"record": raw, "reason": "...", "key": "..."} a line, per chunk

Every reader and writer here takes a source: a local `Path` or a `storage.StoredObject`
(both open as `open("rb")` / `open("wb")`); a local file is handed to Arrow by name.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from citypulse.contracts.contract import Contract
from citypulse.settings import PART_ROWS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from citypulse.pipeline.manifest import Part
    from citypulse.storage import StorageRoot, StoredObject

Source = Union[Path, "StoredObject"]

EXTRACT_PREFIX = "extract"
ACCEPTED_PREFIX = "accepted"
REJECTS_PREFIX = "rejects"
DERIVED_STAGE_COLUMNS = ("event_time", "h3_r8", "h3_r7")
# Written beside them for the COPY: the event time as local time and zone name (PostgreSQL
# turns it into UTC itself, exactly as `event_time AT TIME ZONE zone`) and the run's id.
LOAD_COLUMNS = ("event_time_utc", "cp_run_id")
# NDJSON is decoded this many bytes at a time (plus the rest of the last line).
READ_CHUNK_BYTES = 4 << 20
# Arrow reads the extract file in blocks of this many bytes (two threads share them).
READ_BLOCK_BYTES = 8 << 20
# Accepted rows are written this many at a time.
WRITE_CHUNK_ROWS = 50_000


def json_line(value: Any) -> bytes:
    """One NDJSON line, UTF-8. A string UTF-8 cannot encode (a lone surrogate, which a portal's
    JSON may carry as an escape) stays escaped, so the record is kept and typing rejects it."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def part_key(prefix: str, index: int, extension: str) -> str:
    """The key of part `index` of a run's objects under `prefix` (relative to the run)."""
    return f"{prefix}/part-{index:05d}.{extension}"


def local_file(source: Source) -> Path | None:
    """The source as a file on this machine's disk, if it is one."""
    return source if isinstance(source, Path) else source.local_path


class PartWriter:
    """Writes NDJSON records as numbered objects `<prefix>/part-NNNNN.ndjson` of at most
    `part_rows` records each. Used as a context manager: on an error every part written so
    far is removed, so no partial extract is left behind."""

    def __init__(self, root: StorageRoot, prefix: str, part_rows: int = PART_ROWS) -> None:
        if part_rows < 1:
            raise ValueError(f"part_rows must be positive, not {part_rows}")
        self.root, self.prefix, self.part_rows = root, prefix, part_rows
        self.parts: list[Part] = []
        self._stack = ExitStack()
        self._handle: IO[bytes] | None = None
        self._rows = 0

    def __enter__(self) -> PartWriter:
        self.root.remove(self.prefix)  # a retried extract starts from nothing
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self._finish_part()
        else:
            self._stack.close()
            self.root.remove(self.prefix)

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self._handle is None:
                self._handle = self._stack.enter_context(self.root.open_write(self._key()))
            self._handle.write(json_line(record))
            self._rows += 1
            if self._rows == self.part_rows:
                self._finish_part()

    def _key(self) -> str:
        return f"{self.prefix}/part-{len(self.parts):05d}.ndjson"

    def _finish_part(self) -> None:
        from citypulse.pipeline.manifest import Part

        if self._handle is None:
            return
        self._stack.close()  # the object is whole once closed
        self.parts.append(Part(key=self._key(), rows=self._rows))
        self._handle, self._rows = None, 0


def expire_runs(
    root: StorageRoot, dag_id: str, *, keep: str, retention: timedelta, now: datetime
) -> tuple[list[str], int]:
    """Remove every run prefix of `dag_id` but `keep` whose newest object was written more
    than `retention` before `now`; (the prefixes removed, how many were kept)."""
    from citypulse.storage import RUNS_PREFIX

    removed: list[str] = []
    kept = 0
    for prefix in root.children(f"{RUNS_PREFIX}/{dag_id}"):
        if prefix == keep:
            continue
        written = root.last_write(prefix)
        if written is None or now - written > retention:
            root.remove(prefix)
            removed.append(prefix)
        else:
            kept += 1
    return removed, kept


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


def read_ndjson(source: Source) -> Iterator[dict[str, Any]]:
    """Each line's JSON value, in order; blank lines are skipped.

    Decoded a few MB at a time with msgspec, several times faster than `json`; a chunk that
    msgspec refuses (NaN, lone surrogates, huge exponents) is decoded by `json` instead. The
    cyclic GC stays paused until the generator is exhausted or closed: callers collect 10**5
    acyclic records, which it would otherwise rescan over and over.
    """
    import msgspec

    decode_lines = msgspec.json.Decoder().decode_lines
    with source.open("rb") as handle, gc_paused():
        while chunk := handle.read(READ_CHUNK_BYTES):
            chunk += handle.readline()
            try:
                records = decode_lines(chunk)
            except msgspec.DecodeError:
                records = [json.loads(line) for line in chunk.decode().splitlines() if line.strip()]
            yield from records


def write_accepted(frame: pd.DataFrame, contract: Contract, target: Source, run_id: str) -> int:
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
    local = local_file(target)
    with gc_paused():
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            pa_csv.write_csv(table, str(local), write_options=options)
        else:
            with target.open("wb") as handle:
                pa_csv.write_csv(table, handle, write_options=options)
    return len(frame)


def key_range(frame: pd.DataFrame, contract: Contract) -> list[Any] | None:
    """The lowest and highest key of typed rows (JSON-able, for XCom), or None if none."""
    keys = frame[contract.key].dropna()
    if keys.empty:
        return None
    bounds = [keys.min(), keys.max()]
    return [b.item() if hasattr(b, "item") else b for b in bounds]


def read_wire_table(source: Source, contract: Contract) -> pa.Table | None:
    """An extract part as an Arrow table (the contract's wire fields as strings, boolean and
    other fields as Arrow infers them), or None when Arrow cannot read it so: a value of
    another JSON type in a contract field, a line that is not a JSON object, a field whose
    type varies.
    The caller then reads the records one by one (`read_ndjson`)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    local = local_file(source)
    if local is not None and local.stat().st_size == 0:
        return None
    # Boolean fields are left to inference: portals send them as JSON booleans or as text.
    schema = pa.schema(
        [pa.field(c.wire_name, pa.string()) for c in contract.columns if c.type != "boolean"]
    )
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    read_options = pa_json.ReadOptions(block_size=READ_BLOCK_BYTES)
    try:
        if local is not None:
            return pa_json.read_json(str(local), read_options=read_options, parse_options=options)
        with source.open("rb") as handle:
            return pa_json.read_json(handle, read_options=read_options, parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def read_wire_tables(sources: Sequence[Source], contract: Contract) -> tuple[Any, list[int]]:
    """`read_wire_table` of every part, as one table, and the records of each part; the
    table is None when any part needs the records path or their inferred types disagree."""
    import pyarrow as pa

    tables = []
    for source in sources:
        table = read_wire_table(source, contract)
        if table is None:
            return None, []
        tables.append(table)
    rows = [table.num_rows for table in tables]
    if len(tables) == 1:
        return tables[0], rows
    try:
        return (pa.concat_tables(tables, promote_options="permissive") if tables else None), rows
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None, []


def read_lines_at(source: Source, positions: Iterable[int]) -> dict[int, Any]:
    """The JSON values of the given non-blank lines (0-based, as `read_ndjson` counts them)."""
    wanted = set(positions)
    found: dict[int, Any] = {}
    if not wanted:
        return found
    last = max(wanted)
    index = 0
    with source.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            if index in wanted:
                found[index] = json.loads(line)
            if index == last:
                break
            index += 1
    return found


def write_rejects(rows: Iterator[dict[str, Any]], target: Source) -> int:
    """Write reject rows as NDJSON; returns their count."""
    count = 0
    with target.open("wb") as handle:
        for row in rows:
            handle.write(json_line(row))
            count += 1
    return count
