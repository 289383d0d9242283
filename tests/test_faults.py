"""User stories for things going wrong: a refused query fails the run at once with the
portal's words and an alert line, and nothing of the window lands; a task killed in the
middle of a load commits nothing; schema drift is handled (a new column ignored with a
warning, a missing required column fails naming it); an empty day succeeds with 0 rows; a
run handed over by another CityPulse version fails at once, saying how to recover.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from typing import Any

import pytest

from citypulse.exceptions import ValidationFailed
from conftest import ROOT, query
from helpers import by_id, fresh_dataset, run_city_day, seed_days, task_tries

pytestmark = [pytest.mark.integration]

DAY = date.today() - timedelta(days=40)


def test_a_refused_query_fails_at_once_and_loads_nothing(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    contracts: list[Any],
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "seattle_crime")
    seed_days(standin, contract, [DAY])
    standin.add_fault(
        Fault(
            status=400,
            code="query.soql.no-such-column",
            message="No such column: report_date_time",
            dataset_id=contract.dataset_id,
            times=None,
        )
    )
    try:
        run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    finally:
        standin.clear_faults()
    task_states = task_tries(run)
    assert str(run.state) == "failed"
    assert task_states["extract"] == ("failed", 1)  # no retries for a refused query
    assert task_states["load"][0] == "upstream_failed"
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    assert "query.soql.no-such-column" in text and "No such column: report_date_time" in text
    alerts = [line for line in text.splitlines() if "CITYPULSE_ALERT" in line]
    assert any('"task_id": "extract"' in a and "no-such-column" in a for a in alerts)
    assert query(fresh_warehouse, "SELECT to_regclass('citypulse.seattle_crime')") == [(None,)]


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    import citypulse.pipeline.load.batch as load
    from citypulse.contracts.contract import contract_by_id
    from citypulse_dev.generator import generate_day
    from citypulse.storage import StorageRoot
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse.warehouse.connection import connect
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.windows import window_for_dates
    import datetime

    contract = contract_by_id("nyc_311")
    day = datetime.date(2025, 6, 1)
    records = generate_day(contract, day, seed=5).records
    batch = type_records(contract, records)
    ok = ~batch.rejected_mask
    root = StorageRoot(Path(sys.argv[2]).as_uri())
    real = load.quarantine_rejects

    def stall(*args, **kwargs):
        print("UPSERTED", flush=True)  # the rows are written, the transaction still open
        time.sleep(120)
        return real(*args, **kwargs)

    load.quarantine_rejects = stall
    window = window_for_dates("2025-06-01", "2025-06-01", contract.timezone)
    with connect() as conn:
        load_typed_rows(conn, contract, batch.frame[ok], "doomed", window, root)
    """
)


def test_a_task_killed_mid_load_commits_nothing(fresh_warehouse: str, tmp_path: Any) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(ROOT / "include"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    assert child.stdout is not None
    for line in child.stdout:
        if "UPSERTED" in line:
            break
    else:
        pytest.fail("the loader never reached the upsert")
    (inside,) = query(
        fresh_warehouse,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction'",
    )
    assert inside[0] == 1  # the load is mid-transaction, rows upserted but not committed
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    time.sleep(0.5)
    # The whole transaction is gone: here even the tables it created on first use.
    for table in ("citypulse.nyc_311", "citypulse.ingest_runs", "citypulse.rejects"):
        (exists,) = query(fresh_warehouse, "SELECT to_regclass(%s)", (table,))
        if exists[0] is not None:
            assert query(fresh_warehouse, f"SELECT count(*) FROM {table}") == [(0,)]


def test_an_unexpected_new_column_is_ignored_with_a_warning(
    contracts: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    from citypulse.pipeline.validate.suite import enforce, run_suite
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "chicago_crime")
    records = [{**r, "new_portal_column": "x"} for r in generate_day(contract, DAY, seed=8).records]
    batch = type_records(contract, records)
    report = run_suite(contract, batch, None)
    with caplog.at_level(logging.WARNING):
        enforce(contract, batch, report)
    assert "new_portal_column" in caplog.text
    assert "new_portal_column" not in batch.frame.columns


def test_a_missing_required_column_fails_validation_naming_it(contracts: list[Any]) -> None:
    from citypulse.pipeline.validate.suite import enforce, run_suite
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "nyc_311")
    records = [
        {k: v for k, v in r.items() if k != "complaint_type"}
        for r in generate_day(contract, DAY, seed=8).records
    ]
    batch = type_records(contract, records)
    report = run_suite(contract, batch, None)
    with pytest.raises(ValidationFailed, match=r"\['complaint_type'\].*schema drift"):
        enforce(contract, batch, report)


def test_an_empty_day_succeeds_with_zero_rows(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "montgomery_traffic")
    fresh_dataset(standin, contract)
    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert {state for state, _ in task_tries(run).values()} == {"success"}
    assert query(
        fresh_warehouse,
        "SELECT extracted, loaded, rejected, inserted FROM citypulse.ingest_runs",
    ) == [(0, 0, 0, 0)]
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.montgomery_traffic") == [(0,)]


def test_a_run_handed_over_by_another_version_fails_at_once_saying_how_to_recover(
    contracts: list[Any],
) -> None:
    """Story: CityPulse is upgraded while a run sits between validate and load. What validate
    handed over was written by the older version (a dict with a local folder and no manifest
    version) or by a version this one does not know: the task fails at once, without burning
    retries, and says to clear the run from `extract`."""
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse.dags import steps

    contract = by_id(contracts, "nyc_311")
    before_manifests = {
        "run_id": "scheduled__upgrade",
        "run_dir": "/srv/citypulse/runs/nyc_311/scheduled__upgrade",
        "window": {"start": "2025-06-01T00:00:00", "end": "2025-06-02T00:00:00"},
        "extracted": 12,
        "accepted_format": 2,
    }
    for step, handed in (("validate", before_manifests), ("load", {"version": 99})):
        with pytest.raises(AirflowFailException) as caught:
            steps.STEPS[step](contract.dag_id, handed, {"run_id": "scheduled__upgrade"})
        message = str(caught.value)
        assert f"`{step}` was handed a run manifest of" in message
        assert "clear it from `extract`" in message


@pytest.mark.parametrize(
    "fault",
    ["a short page once", "short pages on every read", "records published while paging"],
)
def test_a_window_is_never_green_with_rows_missing(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any], fault: str
) -> None:
    """Story: a proxy truncates a page (419 records match, 100 come back), or the portal
    publishes records of the window while the extract pages. The run either completes with
    every record (the audit row's portal count = extracted = loaded + rejected) or fails with
    both counts and loads nothing; it is never green with rows missing."""
    from citypulse_dev.generator import generate_day
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    served = generate_day(contract, DAY, seed=9, records=419).records
    standin.put(contract.dataset_id, served)
    late = [
        {**r, "unique_key": str(79_000_000 + i)}
        for i, r in enumerate(generate_day(contract, DAY, seed=10, records=5).records)
    ]
    rows = {"dataset_id": contract.dataset_id, "aggregate": False}
    standin.add_fault(
        {
            "a short page once": Fault(short=100, **rows),
            "short pages on every read": Fault(short=100, times=None, **rows),
            "records published while paging": Fault(insert=tuple(late), **rows),
        }[fault]
    )
    try:
        run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    finally:
        standin.clear_faults()
    if fault == "short pages on every read":
        assert str(run.state) == "failed" and task_tries(run)["extract"][0] == "failed"
        assert query(fresh_warehouse, "SELECT to_regclass('citypulse.nyc_311')") == [(None,)]
        return
    audits = query(
        fresh_warehouse,
        "SELECT portal_rows, extracted, loaded, rejected FROM citypulse.ingest_runs",
    )
    assert str(run.state) == "success"
    expected = len(served) + (len(late) if "published" in fault else 0)
    ((portal, extracted, loaded, rejected),) = audits
    assert portal == extracted == loaded + rejected == expected
    (stored,) = query(fresh_warehouse, "SELECT count(*) FROM citypulse.nyc_311")
    assert stored == (loaded,)


def test_a_window_that_never_agrees_fails_with_both_counts_in_the_alert(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any], caplog: Any
) -> None:
    from citypulse_dev.generator import generate_day
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, generate_day(contract, DAY, seed=9, records=419).records)
    standin.add_fault(Fault(short=100, times=None, aggregate=False))
    try:
        with caplog.at_level(logging.ERROR):
            run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    finally:
        standin.clear_faults()
    alerts = [line for line in caplog.text.splitlines() if "CITYPULSE_ALERT" in line]
    assert any("the portal counts 419 records" in a and "but 100 were read" in a for a in alerts)
