"""The run of one window, written once (`citypulse.pipeline.run`): what every caller of
`WindowRun` gets, whether a city task, an audit's repair or a loader of typed rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import query
from helpers import by_id

DAY = date(2025, 6, 3)


def typed_day(contract: Any, seed: int) -> tuple[Any, list[dict[str, Any]]]:
    """A generated day typed as validate would: the well-formed rows, and the rejects."""
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.generator import generate_day

    batch = type_records(contract, generate_day(contract, DAY, seed=seed).records)
    return batch.frame[~batch.rejected_mask], []


def test_typed_rows_are_written_as_a_validated_runs_objects(
    contracts: list[Any], tmp_path: Path
) -> None:
    from citypulse.pipeline.run import WindowRun
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot

    contract = by_id(contracts, "seattle_crime")
    frame, _ = typed_day(contract, seed=3)
    run = WindowRun(contract, StorageRoot(tmp_path.as_uri()))
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    reject = {"record": {"offense_id": "x"}, "reason": "offense_id: not an integer", "key": None}
    manifest = run.typed_rows(frame, "history_1", window, [reject])
    validated = manifest.require_validated()
    assert manifest.extracted.rows == manifest.extracted.portal_rows == len(frame) + 1
    assert (validated.accepted_rows, [p.rows for p in validated.rejects]) == (len(frame), [1])
    for part in (*validated.accepted, *validated.rejects):
        assert run.root.exists(part.key) and part.key.startswith(manifest.prefix)
    run.require_objects(manifest, list(validated.accepted), "load")  # all there: no error


def test_a_missing_input_names_the_stage_the_object_and_what_to_do(
    contracts: list[Any], tmp_path: Path
) -> None:
    from citypulse.exceptions import RunFilesMissing
    from citypulse.pipeline.run import WindowRun
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot

    contract = by_id(contracts, "seattle_crime")
    frame, _ = typed_day(contract, seed=4)
    run = WindowRun(contract, StorageRoot(tmp_path.as_uri()))
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    manifest = run.typed_rows(frame, "history_2", window)
    (accepted,) = manifest.require_validated().accepted
    run.root.remove(accepted.key)
    with pytest.raises(RunFilesMissing) as caught:
        run.require_objects(manifest, [accepted], "load")
    message = str(caught.value)
    assert f"`load` needs {accepted.key}" in message and "Clear this run from `extract`" in message


@pytest.mark.integration
def test_load_typed_rows_is_one_audited_run_through_the_same_load(
    contracts: list[Any], fresh_warehouse: str, tmp_path: Path
) -> None:
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect

    contract = by_id(contracts, "seattle_crime")
    frame, _ = typed_day(contract, seed=5)
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    root = StorageRoot(tmp_path.as_uri())
    with connect(fresh_warehouse) as conn:
        first = load_typed_rows(conn, contract, frame, "history_3", window, root)
    with connect(fresh_warehouse) as conn:
        again = load_typed_rows(conn, contract, frame, "history_4", window, root)
    assert (first.inserted, again.inserted, again.updated, again.unchanged) == (
        len(frame),
        0,
        0,
        len(frame),
    )
    audits = query(
        fresh_warehouse,
        "SELECT run_id, extracted, loaded FROM citypulse.ingest_runs ORDER BY id",
    )
    assert audits == [("history_3", len(frame), len(frame)), ("history_4", len(frame), len(frame))]
