"""The `vectorized` engine gives every expectation the verdict Great Expectations gives it:
the same validation report (each expectation's success, counts and percent, the top
reasons), the same rows rejected for the same reasons in the same order, the same files
written; what it cannot check alike goes to GX.

`citypulse.pipeline.validate.vectorized`, chosen by `SuiteRunner(engine=...)` /
`CITYPULSE_VALIDATE_ENGINE`; GX (`engine="gx"`) is the reference it is held to.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from helpers import by_id
from test_chunks import SMALL_CHUNK, _records, write_extract

DAY = date(2025, 10, 13)


def _both(contract: Any, records: list[dict[str, Any]], window_rows: int, window: Any) -> Any:
    """Each engine's chunk report, report JSON and per-row reasons on the same records."""
    from citypulse.pipeline.validate.suite import SuiteRunner, merged_report
    from citypulse.pipeline.validate.typing_rules import type_records

    out = {}
    for engine in ("gx", "vectorized"):
        batch = type_records(contract, records, window_rows)
        chunk = SuiteRunner(contract, window, engine).check(batch)
        out[engine] = (
            [asdict(c) for c in chunk.counts],
            merged_report([chunk]).to_json(),
            batch.reasons,
        )
    return out["gx"], out["vectorized"]


def _hostile(contract: Any, n: int = 120) -> list[dict[str, Any]]:
    """Records failing every kind of expectation the contract builds."""
    from citypulse_dev.generator import generate_day

    records = generate_day(contract, DAY, seed=7, records=n).records
    key = contract.key_column.wire_name
    wire = {c.name: c.wire_name for c in contract.columns}
    value_column = next(c for c in contract.columns if c.values)
    for i in range(0, n, 9):
        records[i][value_column.wire_name] = "Someday"  # not in the set
    edits: list[tuple[range | tuple[int, ...], str, Any]] = [
        ((3, 4, 50), key, records[2][key]),  # one key three times more
        (range(10, 30), wire[contract.latitude], "10.0"),  # outside the box: > 5 %
        ((31,), wire[contract.longitude], "-10.0"),  # one outside: within `mostly`
        ((40,), wire[contract.latitude], None),  # NULL coordinates are not checked
        # outside the window (n - 2: a changes-query row, not checked)
        ((60, 61, n - 2), wire[contract.event_time], "2025-09-01T10:00:00.000"),
        ((70,), wire[contract.event_time], "2025-10-14T00:00:00.000"),  # the end: outside
        ((71,), wire[contract.event_time], "2025-10-13T00:00:00.000"),  # the start: inside
        (range(80, 90), "agency", None),  # a required value missing
    ]
    for rows, field, value in edits:
        for i in rows:
            if i < n:
                records[i][field] = value
    return records


def test_failing_expectations_get_the_same_verdicts_rejects_and_reasons(
    contracts: list[Any],
) -> None:
    from citypulse.pipeline.windows import window_for_dates

    contract = by_id(contracts, "nyc_311")
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    records = _hostile(contract)
    gx, vectorized = _both(contract, records, len(records) - 5, window)
    assert vectorized == gx
    _, report, reasons = vectorized
    failed = {
        f"{e['expectation']}:{e['column']}" for e in report["expectations"] if not e["success"]
    }
    assert failed >= {
        "expect_column_values_to_be_unique:unique_key",
        f"expect_column_values_to_be_between:{contract.latitude}",
        f"expect_column_values_to_be_between:{contract.event_time}",
        "expect_column_values_to_not_be_null:agency",
    }
    assert f"expect_column_values_to_be_between:{contract.longitude}" not in failed  # mostly
    assert sum(1 for r in reasons if len(r) > 1) > 0  # rows with several reasons, same order
    # Without a window (a reload of stored rows): no window expectation, same verdicts.
    assert (
        _both(contract, records, len(records), None)[0]
        == _both(contract, records, len(records), None)[1]
    )


def test_all_null_and_empty_columns_follow_gx_vacuous_rules(contracts: list[Any]) -> None:
    """A required column NULL in every row fails (not_null counts all rows); a checked
    column NULL in every row passes vacuously (the others count rows not NULL)."""
    from citypulse.pipeline.windows import window_for_dates

    contract = by_id(contracts, "nyc_311")
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    records = _hostile(contract, 30)
    wire = {c.name: c.wire_name for c in contract.columns}
    for record in records:
        record["agency"] = None
        record.pop(wire[contract.latitude], None)
    gx, vectorized = _both(contract, records, len(records), window)
    assert vectorized == gx
    outcomes = {(e["expectation"], e["column"]): e for e in vectorized[1]["expectations"]}
    assert not outcomes[("expect_column_values_to_not_be_null", "agency")]["success"]
    latitude = outcomes[("expect_column_values_to_be_between", contract.latitude)]
    assert latitude["success"] and latitude["unexpected_percent"] is None


def test_a_chunked_run_writes_the_same_report_and_files_with_either_engine(
    tmp_path: Path, contracts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate_run` over the chunking test's extract (a key repeated across chunks, a
    part typed record by record, a required field absent from a chunk, changes-query
    rows): the report, the accepted COPY parts and the rejects parts byte for byte."""
    from citypulse import settings
    from citypulse.pipeline.validate.suite import validate_run
    from citypulse.storage import StorageRoot

    contract = by_id(contracts, "nyc_311")
    written: dict[str, Any] = {}
    for engine in ("gx", "vectorized"):
        monkeypatch.setattr(settings, "VALIDATE_ENGINE", engine)
        for chunk_rows in (SMALL_CHUNK, 10**9):
            folder = tmp_path / f"{engine}-{chunk_rows}"
            root = StorageRoot(folder.as_uri())
            manifest = write_extract(contract, root, "run_engines", _records(contract))
            validated = validate_run(contract, manifest, root, chunk_rows)
            files = {
                part.key: root.local_path(part.key).read_bytes()
                for part in (*validated.accepted, *validated.rejects)
            }
            written[f"{engine}-{chunk_rows}"] = (validated.report.to_json(), files)
            shutil.rmtree(folder)
    for chunk_rows in (SMALL_CHUNK, 10**9):
        assert written[f"vectorized-{chunk_rows}"] == written[f"gx-{chunk_rows}"]
    report = written[f"vectorized-{SMALL_CHUNK}"][0]
    assert report["rejected"] > 0 and any(not e["success"] for e in report["expectations"])


def test_what_it_cannot_check_alike_is_left_to_gx(contracts: list[Any]) -> None:
    """A column the suite checks missing from the frame: the vectorized engine declines and
    GX checks the chunk, with the outcome it gives under `engine="gx"`."""
    from citypulse.exceptions import ValidationFailed
    from citypulse.pipeline.validate import vectorized
    from citypulse.pipeline.validate.expectations import contract_expectations
    from citypulse.pipeline.validate.suite import SuiteRunner
    from citypulse.pipeline.validate.typing_rules import type_records

    contract = by_id(contracts, "nyc_311")
    records = _hostile(contract, 20)
    outcomes = []
    for engine in ("gx", "vectorized"):
        batch = type_records(contract, records)
        batch.frame = batch.frame.drop(columns=["agency"])
        if engine == "vectorized":
            assert vectorized.evaluate(contract_expectations(contract, None), batch.frame) is None
        try:
            chunk = SuiteRunner(contract, None, engine).check(batch)
            outcomes.append(([asdict(c) for c in chunk.counts], batch.reasons))
        except ValidationFailed as failed:
            outcomes.append(str(failed))
    assert outcomes[1] == outcomes[0]
    with pytest.raises(ValueError, match="validate engine"):
        SuiteRunner(contract, None, "spark")
