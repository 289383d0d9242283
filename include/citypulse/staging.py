"""The files that pass between tasks of one run, in the run's own folder (never XCom).

extract.ndjson   the portal's records, one JSON object a line, as sent
accepted.csv     typed rows ready for COPY (NULL written as \\N), in `stage_columns` order
rejects.ndjson   {"record": raw, "reason": "...", "key": "..."} a line
"""

from __future__ import annotations

import csv
import gc
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from citypulse.contracts import Contract
from citypulse.settings import RUNS_DIR

EXTRACT_FILE = "extract.ndjson"
ACCEPTED_FILE = "accepted.csv"
REJECTS_FILE = "rejects.ndjson"
COPY_NULL = r"\N"
DERIVED_STAGE_COLUMNS = ("event_time", "h3_r8", "h3_r7")
COPY_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# NDJSON is decoded this many bytes at a time (plus the rest of the last line).
READ_CHUNK_BYTES = 4 << 20
# Accepted rows are formatted and written this many at a time (bounded memory).
WRITE_CHUNK_ROWS = 50_000
# Characters that make the csv module quote a field: the delimiter, the quote and those of
# the line terminator (os.linesep, as pandas uses).
_CSV_SPECIALS = (",", '"', *os.linesep)


def run_dir(dag_id: str, run_id: str, root: Path = RUNS_DIR) -> Path:
    """The run's private folder; run ids become safe file names."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    path = root / dag_id / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def stage_columns(contract: Contract) -> list[str]:
    """Columns of the COPY file and of the staging table, in order."""
    return [c.name for c in contract.columns] + list(DERIVED_STAGE_COLUMNS)


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


def write_accepted(frame: Any, contract: Contract, path: Path) -> int:
    """Write typed rows (a pandas DataFrame) as COPY-ready CSV; returns the row count.

    The bytes are what `DataFrame.to_csv(na_rep=COPY_NULL, quoting=QUOTE_MINIMAL, ...)` writes,
    formatted a column at a time with numpy and joined into lines without the csv module's
    per-field work; frames with other dtypes than typing produces go through `to_csv`.
    """
    selected = frame.loc[:, stage_columns(contract)]
    with path.open("w", encoding="utf-8", newline="") as handle, gc_paused():
        for start in range(0, len(selected), WRITE_CHUNK_ROWS):
            chunk = selected.iloc[start : start + WRITE_CHUNK_ROWS]
            fields = [_copy_fields(chunk[name]) for name in chunk.columns]
            formatted = [column for column in fields if column is not None]
            if len(formatted) < max(len(fields), 2):
                break  # a dtype only pandas formats (or one column): pandas writes the file
            try:
                handle.write(_csv_lines(formatted))
            except TypeError:
                break  # not only text in an object column (NaN, numbers, datetimes)
        else:
            return len(frame)
    selected.to_csv(
        path,
        index=False,
        header=False,
        na_rep=COPY_NULL,
        quoting=csv.QUOTE_MINIMAL,
        date_format=COPY_TIMESTAMP_FORMAT,
    )
    return len(frame)


def _copy_fields(values: Any) -> list[str] | None:
    """One column's CSV fields as `to_csv` writes them (NULL as COPY_NULL), for the dtypes
    typing produces; None for any other dtype."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if dtype == np.dtype(object):
        return _text_fields(values.to_numpy())
    mask = values.isna().to_numpy()
    if dtype.kind == "f" and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        array = values.to_numpy().astype(str)  # the shortest repr, as pandas writes floats
    elif isinstance(dtype, pd.Int64Dtype | pd.Int32Dtype):
        array = values.to_numpy(dtype="int64", na_value=0).astype(str)
    elif isinstance(dtype, pd.BooleanDtype):
        array = np.where(values.to_numpy(dtype=bool, na_value=False), "True", "False")
    elif dtype.kind == "M" and not isinstance(dtype, pd.DatetimeTZDtype):
        array = _timestamp_fields(values.to_numpy(), mask)
        if array is None:
            return None
    else:
        return None
    if mask.any():
        if array.dtype.itemsize < np.dtype(f"<U{len(COPY_NULL)}").itemsize:
            array = array.astype(f"<U{len(COPY_NULL)}")
        array[mask] = COPY_NULL
    fields: list[str] = array.tolist()
    return fields


def _text_fields(array: Any) -> list[Any]:
    """A text column's fields, NULL as COPY_NULL; anything but text is left for the join to
    refuse. (A plain loop: pandas' isna costs more than the whole of it on object arrays.)"""
    return [COPY_NULL if value is None else value for value in array]


def _csv_lines(fields: list[list[str]]) -> str:
    """CSV lines of a chunk given column by column; values holding a delimiter, a quote or a
    line break are quoted (QUOTE_MINIMAL)."""
    rows, width = len(fields[0]), len(fields)
    text = os.linesep.join(map(",".join, zip(*fields, strict=True))) + os.linesep
    # Every special character beyond the separators themselves comes from a value.
    expected = {",": rows * (width - 1), '"': 0}
    expected.update({char: rows * os.linesep.count(char) for char in os.linesep})
    if all(text.count(char) == count for char, count in expected.items()):
        return text
    quoted = [[_csv_quote(value) for value in column] for column in fields]
    return os.linesep.join(map(",".join, zip(*quoted, strict=True))) + os.linesep


def _csv_quote(value: str) -> str:
    if any(special in value for special in _CSV_SPECIALS):
        return '"' + value.replace('"', '""') + '"'
    return value


def _timestamp_fields(stamps: Any, mask: Any) -> Any:
    """`YYYY-MM-DD HH:MM:SS.ffffff` for naive datetime64 values of years 1000..9999."""
    import numpy as np

    micros = stamps.astype("datetime64[us]")
    valid = micros[~mask]
    low, high = np.datetime64("1000-01-01", "us"), np.datetime64("9999-12-31T23:59:59", "us")
    if len(valid) and (valid.min() < low or valid.max() > high):
        return None
    texts = np.datetime_as_string(micros, unit="us")  # 2025-10-13T07:03:18.000000
    texts.view(np.uint32).reshape(len(texts), -1)[:, 10] = ord(" ")
    return texts


def write_rejects(rows: Iterator[dict[str, Any]], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count
