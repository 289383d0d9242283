"""User story: a window larger than one chunk validates and loads exactly as one chunk of it
would (same rows, same rejects with the same reasons, same audit row and validation
report), and a failure in the middle of its last chunk commits nothing.

`citypulse.pipeline.validate.chunks` splits the extract parts into chunks that `validate_run`
types, checks and writes one at a time; `load_batch` streams their COPY parts into one transaction.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import query, warehouse_of_its_own

DAY = date(2025, 10, 13)
RECORDS, PART_ROWS, SMALL_CHUNK = 405, 150, 7  # the last chunk is a full one
# Record REPEATED takes the key of record FIRST: in other parts, so in other chunks.
FIRST, REPEATED = 5, 250
# Record NUMBER holds a JSON number where the API sends text: its part goes the record path.
NUMBER = 160
# Rejects in every part, some in the changes (the last ten records).
BAD_LATITUDE = (20, 170, 320, 395)
# A required field absent from every record of the third 7-record chunk: that chunk is
# typed record by record and says the field is absent; the window holds it, so it only
# rejects those records, as one chunk of the whole window does.
NO_AGENCY = range(49, 56)


@dataclass
class Extract:
    contract: Any
    root: Any
    manifest: Any  # not validated yet


def _records(contract: Any) -> list[dict[str, Any]]:
    from citypulse_dev.generator import generate_day

    records = generate_day(contract, DAY, seed=3, records=RECORDS).records
    key = contract.key_column.wire_name
    records[REPEATED][key] = records[FIRST][key]
    latitude = next(c.wire_name for c in contract.columns if c.name == contract.latitude)
    records[NUMBER][latitude] = 40.7  # a JSON number: Arrow cannot read this part as text
    for i in BAD_LATITUDE:
        records[i][latitude] = "N/A"
    for i in NO_AGENCY:
        del records[i]["agency"]
    return records


def write_extract(contract: Any, root: Any, run_id: str, records: list[dict[str, Any]]) -> Any:
    """The run's extract parts and its manifest, as `extract` leaves them; the last ten
    records come from the changes query."""
    from citypulse.pipeline.manifest import Extracted, RunManifest
    from citypulse.pipeline.run_files import PartWriter
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import run_prefix

    prefix = run_prefix(contract.dag_id, run_id)
    with PartWriter(root, f"{prefix}/extract", PART_ROWS) as writer:
        writer.write(records)
    n = len(records)
    extracted = Extracted(
        parts=tuple(writer.parts),
        rows=n,
        window_rows=n - 10,
        change_rows=10,
        pages=1,
        retries=0,
        portal_rows=n,
        watermark="2025-10-20T00:00:00.000",
    )
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    return RunManifest.of_window(
        contract.dag_id, run_id, prefix, window, extracted, started=0.0, incremental=True
    )


def new_extract(folder: Path, contracts: list[Any]) -> Extract:
    """The window's extract, written into `folder`."""
    from citypulse.storage import StorageRoot

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    root = StorageRoot(folder.as_uri())
    manifest = write_extract(contract, root, "run_chunks", _records(contract))
    assert len(manifest.extracted.parts) == 3
    return Extract(contract, root, manifest)


@pytest.fixture
def extract(tmp_path: Path, contracts: list[Any]) -> Extract:
    return new_extract(tmp_path, contracts)


@dataclass
class Validation:
    """The extract, in a folder of its own, validated at one chunk size."""

    folder: Path
    extract: Extract
    validated: Any


@pytest.fixture(scope="module")
def validation(
    tmp_path_factory: pytest.TempPathFactory, contracts: list[Any]
) -> Callable[[int], Validation]:
    """`validate_run` of the extract at a chunk size, run once per size for the module (it
    reads only the extract and writes only under the run's prefix; validating there again at
    another size removes the last one's objects, so each size has a folder of its own)."""
    from citypulse.pipeline.validate.suite import validate_run

    done: dict[int, Validation] = {}

    def at(chunk_rows: int) -> Validation:
        if chunk_rows not in done:
            folder = tmp_path_factory.mktemp(f"chunks-{chunk_rows}")
            extract = new_extract(folder, contracts)
            validated = validate_run(extract.contract, extract.manifest, extract.root, chunk_rows)
            done[chunk_rows] = Validation(folder, extract, validated)
        return done[chunk_rows]

    return at


def load(extract: Extract, validated: Any, dsn: str) -> None:
    from citypulse.pipeline.load.batch import load_batch
    from citypulse.warehouse.connection import connect

    with connect(dsn) as conn:
        load_batch(conn, extract.contract, extract.manifest.with_validated(validated), extract.root)


def validate_and_load(extract: Extract, dsn: str, chunk_rows: int) -> Any:
    from citypulse.pipeline.validate.suite import validate_run

    validated = validate_run(extract.contract, extract.manifest, extract.root, chunk_rows)
    load(extract, validated, dsn)
    return validated


def warehouse_state(dsn: str, contract: Any) -> dict[str, Any]:
    """What a load leaves: the rows, the rejects and the audit, without load times."""
    table = f"citypulse.{contract.table}"
    return {
        "rows": query(
            dsn,
            f"SELECT to_jsonb(t) - 'cp_loaded_at' - 'cp_changed_at' FROM {table} t "
            f"ORDER BY {contract.key}",
        ),
        "rejects": query(
            dsn,
            "SELECT record_key, reason, record, record_hash, event_day FROM citypulse.rejects "
            "ORDER BY record_hash",
        ),
        "audit": query(
            dsn,
            "SELECT to_jsonb(r) - 'id' - 'seconds' - 'finished_at' FROM citypulse.ingest_runs r",
        ),
        "watermark": query(dsn, "SELECT value FROM citypulse.watermarks"),
    }


@pytest.fixture
def second_warehouse(pg_server: str) -> Iterator[str]:
    with warehouse_of_its_own(pg_server) as dsn:
        yield dsn


@pytest.mark.integration
def test_a_window_of_many_chunks_loads_exactly_as_one_chunk(
    validation: Callable[[int], Validation], fresh_warehouse: str, second_warehouse: str
) -> None:
    one, many = validation(10**9), validation(SMALL_CHUNK)
    extract, contract = many.extract, many.extract.contract
    whole, chunked = one.validated, many.validated
    load(one.extract, whole, fresh_warehouse)
    load(extract, chunked, second_warehouse)

    assert len(whole.accepted) == 3  # a chunk never spans two parts
    chunks = sum(-(-part.rows // SMALL_CHUNK) for part in extract.manifest.extracted.parts)
    assert len(chunked.accepted) == len(chunked.rejects) == chunks
    assert sum(1 for part in chunked.rejects if part.rows) > 3
    assert chunked.report == whole.report
    assert chunked.key_range == whole.key_range
    assert (chunked.accepted_rows, chunked.rejected_rows) == (
        whole.accepted_rows,
        whole.rejected_rows,
    )
    once, many = (
        warehouse_state(fresh_warehouse, contract),
        warehouse_state(second_warehouse, contract),
    )
    assert many == once
    assert len(many["rows"]) == whole.accepted_rows and len(many["audit"]) == 1
    # The repeated key is quarantined in both of its records, chunks apart, as within one.
    key = str(_records(contract)[FIRST][contract.key_column.wire_name])
    repeated = [r for r in many["rejects"] if r[0] == key]
    assert len(repeated) == 2
    assert all(f"{contract.key}: key repeated in this extract" in r[1] for r in repeated)


def test_the_merged_report_is_the_report_of_one_run_over_every_row(
    extract: Extract, validation: Callable[[int], Validation]
) -> None:
    from citypulse.pipeline.validate.suite import run_suite
    from citypulse.pipeline.validate.typing_rules import type_extract

    contract, manifest, root = extract.contract, extract.manifest, extract.root
    parts = [root.object(part.key) for part in manifest.extracted.parts]
    batch = type_extract(contract, parts, manifest.extracted.window_rows)
    one_run = run_suite(contract, batch, manifest.window).to_json()
    for chunk_rows in (SMALL_CHUNK, 50, 10**9):
        report = validation(chunk_rows).validated.report.to_json()
        assert report == one_run, chunk_rows
    unique = next(
        e
        for e in one_run["expectations"]
        if e["expectation"] == "expect_column_values_to_be_unique"
    )
    assert unique["unexpected"] == 2 and not unique["success"]


@pytest.mark.integration
@pytest.mark.parametrize("shift", [10**7, 0], ids=["straight_copy", "staged_upsert"])
def test_a_failure_in_the_last_chunk_commits_nothing(
    extract: Extract,
    validation: Callable[[int], Validation],
    fresh_warehouse: str,
    tmp_path: Path,
    shift: int,
) -> None:
    """A row the server refuses in the middle of the last chunk's COPY part: the run's rows,
    rejects, audit row and watermark move are all rolled back (an earlier run's keys apart:
    COPY straight into the table; the same keys: COPY into staging, then the upsert)."""
    import psycopg2

    from citypulse.pipeline.load.batch import load_batch
    from citypulse.warehouse.connection import connect

    contract, root = extract.contract, extract.root
    earlier = _records(contract)[:40]
    for record in earlier:
        record[contract.key_column.wire_name] = str(int(record["unique_key"]) + shift)
    before_manifest = write_extract(contract, root, "run_before", earlier)
    before = before_manifest.model_copy(
        update={"extracted": before_manifest.extracted.model_copy(update={"watermark": "2025"})}
    )
    validate_and_load(Extract(contract, root, before), fresh_warehouse, SMALL_CHUNK)
    state = warehouse_state(fresh_warehouse, contract)

    # The window validated in small chunks, its objects copied into this test's root.
    chunked = validation(SMALL_CHUNK)
    shutil.copytree(chunked.folder, tmp_path, dirs_exist_ok=True)
    validated = chunked.validated
    last = root.local_path(validated.accepted[-1].key)
    lines = last.read_bytes().splitlines(keepends=True)
    assert len(lines) > 2
    middle = len(lines) // 2
    last.write_bytes(b"".join([*lines[:middle], b"not,a,row\n", *lines[middle:]]))
    with (
        pytest.raises(psycopg2.errors.InvalidTextRepresentation, match="COPY"),
        connect(fresh_warehouse) as conn,
    ):
        load_batch(conn, contract, extract.manifest.with_validated(validated), root)
    assert warehouse_state(fresh_warehouse, contract) == state
    assert state["watermark"] == [("2025",)]


def test_chunks_split_parts_and_count_window_rows() -> None:
    from citypulse.pipeline.validate.chunks import plan_chunks

    a, b = Path("a"), Path("b")
    chunks = plan_chunks([(a, 5), (b, 4)], window_rows=7, chunk_rows=3)
    assert [(c.source, c.offset, c.rows, c.window_rows) for c in chunks] == [
        (a, 0, 3, 3),
        (a, 3, 2, 2),
        (b, 0, 3, 2),
        (b, 3, 1, 0),
    ]
    assert [c.ends_part for c in chunks] == [False, True, False, True]
    with pytest.raises(ValueError):
        plan_chunks([(a, 1)], window_rows=1, chunk_rows=0)


def test_a_key_in_two_chunks_is_found_and_one_within_a_chunk_left_to_the_suite() -> None:
    import pandas as pd

    from citypulse.pipeline.validate.chunks import KeyLedger

    ledger = KeyLedger()
    ledger.add(0, pd.Series([1, 2, 2, None], dtype="Int64"))
    ledger.add(1, pd.Series([3, 4], dtype="Int64"))
    ledger.add(2, pd.Series([5, 1], dtype="Int64"))
    assert ledger.repeated_across() == (frozenset({1}), [0, 2])
    texts = KeyLedger()
    texts.add(0, pd.Series(["a", "b"]))
    texts.add(1, pd.Series(["c", "a", None]))
    assert texts.repeated_across() == (frozenset({"a"}), [0, 1])


def test_the_part_stream_hands_every_part_in_order_and_a_read_error_to_copy(
    tmp_path: Path,
) -> None:
    from citypulse.pipeline.load.copystream import PartStream

    sources = []
    for i in range(5):
        path = tmp_path / f"part-{i}.csv"
        path.write_bytes(f"{i},x\n".encode() * (1000 + i))
        sources.append(path)
    with PartStream(sources, block_bytes=777) as stream:
        blocks = iter(lambda: stream.read(1 << 20), b"")
        assert b"".join(blocks) == b"".join(p.read_bytes() for p in sources)
        assert stream.read() == b""
    gone = tmp_path / "gone.csv"
    with PartStream([*sources, gone], block_bytes=777) as stream, pytest.raises(FileNotFoundError):
        while stream.read():
            pass
    with PartStream(sources, block_bytes=10) as stream:  # COPY ended early: no hang
        stream.read()


def test_every_chunk_reads_its_own_rejected_records_back(tmp_path: Path, contracts: Any) -> None:
    from citypulse.pipeline.run_files import PartWriter
    from citypulse.pipeline.validate.chunks import ChunkReader, plan_chunks
    from citypulse.storage import StorageRoot

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = _records(contract)
    root = StorageRoot(tmp_path.as_uri())
    with PartWriter(root, "x", PART_ROWS) as writer:
        writer.write(records)
    parts = [(root.object(p.key), p.rows) for p in writer.parts]
    reader = ChunkReader(contract)
    for chunk in plan_chunks(parts, len(records), SMALL_CHUNK):
        batch = reader.typed(chunk)
        part = next(i for i, (source, _) in enumerate(parts) if source is chunk.source)
        first = part * PART_ROWS + chunk.offset
        read_back = batch.raw_records(list(range(chunk.rows)))
        assert read_back == records[first : first + chunk.rows], chunk
