"""User stories for things going wrong: a refused query fails the run at once with the
portal's words and an alert line, and nothing of the window lands; a task killed in the
middle of a load commits nothing; schema drift is handled (a new column ignored with a
warning, a missing required column fails naming it); an empty day succeeds with 0 rows; a
run validated before an upgrade changed the COPY file's layout still loads.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from citypulse.exceptions import ValidationFailed
from citypulse.standin.catalog import declare_contracts
from conftest import ROOT, query
from helpers import by_id, run_city_day, seed_days

pytestmark = [pytest.mark.integration]

DAY = date.today() - timedelta(days=40)


def states(run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}


def test_a_refused_query_fails_at_once_and_loads_nothing(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    contracts: list[Any],
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from citypulse.standin.server import Fault

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
    task_states = states(run)
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
    import citypulse.load as load
    from citypulse.contracts import contract_by_id
    from citypulse.standin.generator import generate_day
    from citypulse.staging import write_accepted, write_rejects
    from citypulse.typing_rules import type_records
    from citypulse.warehouse import connect
    from citypulse.windows import window_for_dates
    import datetime

    contract = contract_by_id("nyc_311")
    day = datetime.date(2025, 6, 1)
    records = generate_day(contract, day, seed=5).records
    batch = type_records(contract, records)
    ok = ~batch.rejected_mask
    folder = Path(sys.argv[2])
    write_accepted(batch.frame[ok], contract, folder / "accepted.csv", "doomed")
    write_rejects(iter(()), folder / "rejects.ndjson")
    real = load.quarantine_rejects

    def stall(*args, **kwargs):
        print("UPSERTED", flush=True)  # the rows are written, the transaction still open
        time.sleep(120)
        return real(*args, **kwargs)

    load.quarantine_rejects = stall
    window = window_for_dates("2025-06-01", "2025-06-01", contract.timezone)
    with connect() as conn:
        load.load_batch(conn, contract, run_id="doomed", window=window,
                        accepted_path=folder / "accepted.csv",
                        rejects_path=folder / "rejects.ndjson",
                        extracted=int(ok.sum()), accepted=int(ok.sum()))
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
    from citypulse.standin.generator import generate_day
    from citypulse.typing_rules import type_records
    from citypulse.validate import enforce, run_suite

    contract = by_id(contracts, "chicago_crime")
    records = [{**r, "new_portal_column": "x"} for r in generate_day(contract, DAY, seed=8).records]
    batch = type_records(contract, records)
    report = run_suite(contract, batch, None)
    with caplog.at_level(logging.WARNING):
        enforce(contract, batch, report)
    assert "new_portal_column" in caplog.text
    assert "new_portal_column" not in batch.frame.columns


def test_a_missing_required_column_fails_validation_naming_it(contracts: list[Any]) -> None:
    from citypulse.standin.generator import generate_day
    from citypulse.typing_rules import type_records
    from citypulse.validate import enforce, run_suite

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
    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])
    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert {state for state, _ in states(run).values()} == {"success"}
    assert query(
        fresh_warehouse,
        "SELECT extracted, loaded, rejected, inserted FROM citypulse.ingest_runs",
    ) == [(0, 0, 0, 0)]
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.montgomery_traffic") == [(0,)]


def test_a_run_validated_before_an_upgrade_still_loads(
    standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: CityPulse is upgraded while a run sits between validate and load. Its
    accepted.csv has the old layout (no event_time_utc, no cp_run_id) and its validate
    result no format marker: the load types the extract file again and loads it all."""
    from zoneinfo import ZoneInfo

    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from citypulse import tasks
    from citypulse.staging import ACCEPTED_FILE, EXTRACT_FILE, stage_columns
    from citypulse.typing_rules import type_extract

    contract = by_id(contracts, "nyc_311")
    seed_days(standin, contract, [DAY])
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=ZoneInfo(contract.timezone))
    context = {
        "run_id": "scheduled__upgrade",
        "data_interval_start": start,
        "data_interval_end": start + timedelta(days=1),
        "params": {},
    }
    extracted = tasks.extract(contract.dag_id, context)
    validated = tasks.validate(contract.dag_id, extracted)
    folder = Path(validated["run_dir"])
    batch = type_extract(contract, folder / EXTRACT_FILE, validated["window_rows"])
    old = pa.Table.from_pandas(
        batch.frame[~batch.rejected_mask].loc[:, stage_columns(contract)], preserve_index=False
    )
    pa_csv.write_csv(
        old, folder / ACCEPTED_FILE, write_options=pa_csv.WriteOptions(include_header=False)
    )
    del validated["accepted_format"], validated["key_range"]
    result = tasks.load(contract.dag_id, validated, context)
    assert result["loaded"] == validated["accepted"] > 0
    assert result["extracted"] == result["loaded"] + result["rejected"]
    assert query(
        fresh_warehouse,
        "SELECT count(*), count(*) FILTER (WHERE cp_run_id = 'scheduled__upgrade' AND "
        "event_time_utc = created_date AT TIME ZONE 'America/New_York') FROM citypulse.nyc_311",
    ) == [(result["loaded"], result["loaded"])]
