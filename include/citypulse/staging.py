"""The files that pass between tasks of one run, in the run's own folder (never XCom).

extract.ndjson   the portal's records, one JSON object a line, as sent
accepted.csv     typed rows ready for COPY (NULL written as \\N), in `stage_columns` order
rejects.ndjson   {"record": raw, "reason": "...", "key": "..."} a line
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from citypulse.contracts import Contract
from citypulse.settings import RUNS_DIR

EXTRACT_FILE = "extract.ndjson"
ACCEPTED_FILE = "accepted.csv"
REJECTS_FILE = "rejects.ndjson"
COPY_NULL = r"\N"
DERIVED_STAGE_COLUMNS = ("event_time", "h3_r8", "h3_r7")


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


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_accepted(frame: Any, contract: Contract, path: Path) -> int:
    """Write typed rows (a pandas DataFrame) as COPY-ready CSV; returns the row count."""
    frame.loc[:, stage_columns(contract)].to_csv(
        path,
        index=False,
        header=False,
        na_rep=COPY_NULL,
        quoting=csv.QUOTE_MINIMAL,
        date_format="%Y-%m-%d %H:%M:%S.%f",
    )
    return len(frame)


def write_rejects(rows: Iterator[dict[str, Any]], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count
