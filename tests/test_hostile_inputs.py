"""User stories: a hostile portal, a malformed record and a careless contract, one by one.
A bad record is quarantined and never blocks its day; no request hangs; no token leaves its
portal or reaches a log, an alert or a webhook; every input is checked where it enters; and
the warehouse and its audit stay consistent throughout.

Each test drives the real path (the stand-in over HTTP through sodapy, `dag.test()`, a real
PostgreSQL) with one misbehaviour the stand-in injects.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, query
from helpers import HeaderRecorder, by_id, fresh_dataset, run_city_day, task_states, task_tries

pytestmark = [pytest.mark.integration]

# A fixed past day: the generated records (and which of them are malformed) depend on the day,
# and the hostile records must stay under the contract's 5 % reject threshold beside them.
DAY = date(2026, 10, 8)
TOKEN = "tok-aG9zdGlsZS1wb3J0YWwtdG9rZW4"


@pytest.fixture
def recorder() -> Iterator[HeaderRecorder]:
    """Another host, or an alert webhook: records what reaches it, answers `200 []`."""
    server = HeaderRecorder()
    yield server
    server.close()


@pytest.fixture
def nyc(standin: Any, contracts: list[Any]) -> Iterator[Any]:
    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    standin.clear_faults()
    yield contract
    standin.clear_faults()


def serve(standin: Any, contract: Any, records: list[dict[str, Any]] | None = None) -> list[Any]:
    from citypulse_dev.generator import generate_day

    records = records or generate_day(contract, DAY, seed=61, records=40).records
    standin.put(contract.dataset_id, records)
    return records


def consistent_audit(dsn: str, contract: Any) -> tuple[int, int, int, int]:
    """The last audit row's counts; they add up, and the table holds what was loaded."""
    portal, extracted, loaded, rejected = query(
        dsn,
        "SELECT portal_rows, extracted, loaded, rejected FROM citypulse.ingest_runs "
        "ORDER BY id DESC LIMIT 1",
    )[0]
    assert portal == extracted == loaded + rejected
    (stored,) = query(dsn, f"SELECT count(*) FROM citypulse.{contract.table}")
    assert stored == (loaded,)
    return portal, extracted, loaded, rejected


def reject_reasons(dsn: str) -> list[str]:
    return [row[0] for row in query(dsn, "SELECT reason FROM citypulse.rejects")]


# --- a bad record is quarantined, never fatal ----------------------------------------------


def test_a_lone_surrogate_quarantines_its_record_and_the_day_loads(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any
) -> None:
    records = serve(standin, nyc)
    field = next(c.wire_name for c in nyc.columns if c.name == "descriptor")
    bad = {**records[0], field: "broken \ud800 text", "unique_key": "69999999"}
    standin.put(nyc.dataset_id, [bad])
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert str(run.state) == "success", task_states(run)
    _, extracted, _, rejected = consistent_audit(fresh_warehouse, nyc)
    assert extracted == len(records) + 1 and rejected >= 1
    (stored,) = query(
        fresh_warehouse,
        "SELECT reason, record->>%s FROM citypulse.rejects WHERE record_key = '69999999'",
        (field,),
    )
    assert "lone UTF-16 surrogate" in stored[0]
    assert stored[1] == "broken \\ud800 text"  # kept, escaped: jsonb cannot hold it raw


def test_a_key_longer_than_an_index_entry_quarantines_its_record(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    import secrets

    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "montgomery_traffic")  # keyed by Socrata's text row id
    fresh_dataset(standin, contract)
    records = generate_day(contract, DAY, seed=62, records=200).records
    huge = secrets.token_hex(5_000)  # 10 KB that no compression shrinks
    records[3] = {**records[3], ":id": huge}
    standin.put(contract.dataset_id, records)
    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert str(run.state) == "success", task_states(run)
    consistent_audit(fresh_warehouse, contract)
    reasons = [r for r in reject_reasons(fresh_warehouse) if "a key of" in r]
    assert reasons == ["row_id: a key of 10,000 bytes, longer than the 2,000 a key may be "
                       "(an index entry holds about 2,700)"]  # fmt: skip


def test_integers_of_thousands_of_digits_quarantine_their_records_and_the_day_loads(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any
) -> None:
    """Was: `ValueError: Exceeds the limit (4300 digits) for integer string conversion`,
    naming neither column nor record, retried three times, and the day's good records
    waiting."""
    records = serve(standin, nyc)
    huge_key = {**records[0], "unique_key": "9" * 10_000}
    huge_count = {**records[1], "unique_key": "69999997", "x_coordinate_state_plane": "7" * 5_000}
    standin.put(nyc.dataset_id, [huge_key, huge_count])
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert task_tries(run)["validate"] == ("success", 1)
    assert str(run.state) == "success", task_states(run)
    _, extracted, loaded, rejected = consistent_audit(fresh_warehouse, nyc)
    assert extracted == len(records) + 2 and loaded >= len(records) - rejected
    stored = {
        length: reason.split("; ")[0]  # a NULL key is a missing required value too
        for length, reason in query(
            fresh_warehouse,
            "SELECT length(record_key), reason FROM citypulse.rejects WHERE reason LIKE '%beyond%'",
        )
    }
    assert stored == {
        8: "x_coordinate_state_plane: '7777777777777777777777777777777777777777…' is not a "
        "valid integer (beyond ±2,147,483,647)",
        10_000: "unique_key: '9999999999999999999999999999999999999999…' is not a valid "
        "bigint (beyond ±9,223,372,036,854,775,807)",
    }


def test_an_event_time_with_an_offset_is_the_right_instant_in_both_columns(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any
) -> None:
    records = serve(standin, nyc)
    zulu = {**records[0], "unique_key": "69999998", "created_date": f"{DAY}T12:00:00Z"}
    standin.put(nyc.dataset_id, [zulu])
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert str(run.state) == "success"
    ((local, utc),) = query(
        fresh_warehouse,
        "SELECT created_date, event_time_utc FROM citypulse.nyc_311 WHERE unique_key = 69999998",
    )
    instant = datetime.combine(DAY, datetime.min.time().replace(hour=12), tzinfo=ZoneInfo("UTC"))
    assert utc == instant
    assert local == instant.astimezone(ZoneInfo(nyc.timezone)).replace(tzinfo=None)


def test_an_offset_inside_the_local_day_is_inside_the_window(contracts: list[Any]) -> None:
    """`21:30-04:00` on the day is 01:30 UTC the next day, and 21:30 local: in the window."""
    from citypulse.pipeline.validate.suite import run_suite
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse.pipeline.windows import window_for_dates

    contract = by_id(contracts, "nyc_311")
    summer = date(2025, 7, 10)  # New York is at -04:00
    window = window_for_dates(summer.isoformat(), summer.isoformat(), contract.timezone)
    from citypulse_dev.generator import generate_day

    record = generate_day(contract, summer, seed=63, records=1).records[0]
    record = {**record, "created_date": f"{summer}T21:30:00-04:00"}
    batch = type_records(contract, [record])
    run_suite(contract, batch, window)
    assert batch.reasons == [[]]
    assert batch.frame["created_date"].iloc[0] == datetime(2025, 7, 10, 21, 30)


def test_json_numbers_and_booleans_are_accepted_where_the_column_allows(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any
) -> None:
    """A portal (or a proxy re-encoding it) sends the key and coordinates as JSON numbers."""
    from citypulse_dev.standin.server import Fault

    records = serve(standin, nyc)
    served = standin.records(nyc.dataset_id)
    as_numbers = [
        {
            **r,
            "unique_key": int(r["unique_key"]),
            **{k: float(r[k]) for k in ("latitude", "longitude") if _is_number(r.get(k))},
        }
        for r in sorted(served, key=lambda r: r[":id"])
    ]
    standin.add_fault(Fault(body=json.dumps(as_numbers), aggregate=False, times=1))
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert str(run.state) == "success"
    assert consistent_audit(fresh_warehouse, nyc)[1] == len(records)
    assert not [r for r in reject_reasons(fresh_warehouse) if "is not a valid" in r]


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# --- no request hangs, responses are checked before they count -----------------------------


def test_a_dripping_portal_fails_the_request_by_its_deadline_and_the_retry_loads(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citypulse_dev.standin.server import Fault

    records = serve(standin, nyc)
    monkeypatch.setenv("CITYPULSE_HTTP_DEADLINE_SECONDS", "1.5")
    standin.add_fault(Fault(drip=0.2, aggregate=False, times=1))
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert str(run.state) == "success"
    assert consistent_audit(fresh_warehouse, nyc)[1] == len(records)


def test_a_portal_that_never_stops_dripping_fails_naming_the_url_and_the_seconds(
    standin: Any, nyc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citypulse.exceptions import PortalError
    from citypulse.pipeline.extract import extract_window
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.portal.client import RetryPolicy
    from citypulse.storage import StorageRoot
    from citypulse_dev.standin.server import Fault

    serve(standin, nyc)
    standin.add_fault(Fault(drip=0.2, aggregate=False, times=None))
    policy = RetryPolicy(attempts=2, backoff_seconds=0.01, timeout_seconds=5, deadline_seconds=1)
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), nyc.timezone)
    with pytest.raises(PortalError) as caught:
        extract_window(nyc, window, StorageRoot(tmp_path.as_uri()), "x", policy=policy)
    message = str(caught.value)
    assert f"/resource/{nyc.dataset_id}.json: no complete answer after" in message
    assert "the deadline is 1 s" in message and caught.value.transient


def test_every_city_task_has_an_execution_timeout_from_its_contract(
    dagbag: Any, contracts: list[Any]
) -> None:
    for contract in contracts:
        for task in dagbag.dags[contract.dag_id].tasks:
            assert task.execution_timeout == timedelta(minutes=contract.task_timeout_minutes)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body>502 Bad Gateway (proxy)</body></html>", "text/html"),
        ("upstream timed out", "text/plain"),
        ('{"status": "maintenance"}', "application/json"),
        ("", "application/json"),
    ],
    ids=["html", "text", "object", "empty"],
)
def test_a_200_that_is_not_rows_is_retried_then_reported_with_its_first_bytes(
    standin: Any, nyc: Any, tmp_path: Path, body: str, content_type: str
) -> None:
    from citypulse.exceptions import PortalError
    from citypulse.pipeline.extract import extract_window
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.portal.client import RetryPolicy
    from citypulse.storage import StorageRoot
    from citypulse_dev.standin.server import Fault

    records = serve(standin, nyc)
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), nyc.timezone)
    policy = RetryPolicy(attempts=3, backoff_seconds=0.01)
    root = StorageRoot(tmp_path.as_uri())
    fault = {"body": body, "content_type": content_type, "aggregate": False}
    standin.add_fault(Fault(**fault, times=1))
    waits: list[float] = []
    result = extract_window(nyc, window, root, "once", policy=policy, sleep=waits.append)
    assert result.rows == len(records) and len(waits) == 1  # retried, then loaded
    standin.add_fault(Fault(**fault, times=None))
    with pytest.raises(PortalError) as caught:
        extract_window(nyc, window, root, "always", policy=policy, sleep=lambda _: None)
    message = str(caught.value)
    assert "still failing after 3 attempts" in message
    assert f"HTTP 200 ({content_type}) but not a JSON list of records: {body[:200]!r}" in message


@pytest.mark.parametrize("retry_after", ["-1", "NaN", "inf", "soon"])
def test_a_bad_retry_after_falls_back_to_backoff(
    standin: Any, nyc: Any, tmp_path: Path, retry_after: str
) -> None:
    from citypulse.pipeline.extract import extract_window
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.portal.client import RetryPolicy
    from citypulse.storage import StorageRoot
    from citypulse_dev.standin.server import Fault

    serve(standin, nyc)
    standin.add_fault(Fault(status=429, retry_after=retry_after, times=1))
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), nyc.timezone)
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, backoff_seconds=0.5, max_backoff_seconds=4)
    extract_window(nyc, window, StorageRoot(tmp_path.as_uri()), "x", policy=policy,
                   sleep=waits.append)  # fmt: skip
    assert len(waits) == 1 and 0.25 <= waits[0] <= 0.5  # the first backoff step, jittered


# --- the token stays with its portal ---------------------------------------------------------


def test_a_redirect_to_another_host_is_not_followed_and_the_token_stays_home(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    nyc: Any,
    recorder: HeaderRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from citypulse_dev.standin.server import Fault

    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    serve(standin, nyc)
    elsewhere = f"http://localhost:{recorder.port}/resource/{nyc.dataset_id}.json"
    standin.add_fault(Fault(redirect=elsewhere, times=None))
    run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    states = task_tries(run)
    assert states["extract"] == ("failed", 1)  # at once: a retry would be redirected again
    assert recorder.requests == []  # nothing, token or not, went to the other host
    assert query(fresh_warehouse, "SELECT to_regclass('citypulse.nyc_311')") == [(None,)]


def test_a_portal_echoing_the_token_reaches_no_log_alert_or_webhook(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    nyc: Any,
    recorder: HeaderRecorder,
    monkeypatch: pytest.MonkeyPatch,
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from citypulse_dev.standin.server import Fault

    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    webhook = {"conn_type": "http", "host": f"http://127.0.0.1:{recorder.port}/hook"}
    monkeypatch.setenv("AIRFLOW_CONN_CITYPULSE_ALERTS", json.dumps(webhook))
    serve(standin, nyc)
    message = f"Invalid app token {TOKEN} for this dataset"
    standin.add_fault(Fault(status=403, code="forbidden", message=message, times=None))
    with caplog.at_level(logging.DEBUG):
        run = run_city_day(dagbag.dags[nyc.dag_id], nyc, DAY)
    assert str(run.state) == "failed"
    captured = capfd.readouterr()
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    logs = [captured.out, captured.err, caplog.text]
    logs += [p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file()]
    alerts = [line for text in logs for line in text.splitlines() if "CITYPULSE_ALERT" in line]
    posted = [r["body"] for r in recorder.requests]
    assert alerts and posted  # the failure was alerted and posted...
    assert any("Invalid app token ***" in a for a in alerts)  # ...in the portal's words
    for text in [*logs, *alerts, *posted]:
        assert TOKEN not in text


# --- inputs checked where they enter ---------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "said"),
    [
        ({"start_date": "2025-03-10", "end_date": "2025-03-01"}, "is before start_date"),
        ({"start_date": "1975-01-01", "end_date": "2024-12-31"}, "Backfill it instead"),
    ],
    ids=["end-before-start", "fifty-years"],
)
def test_a_window_no_run_may_load_fails_at_once_before_any_portal_request(
    dagbag: Any, standin: Any, fresh_warehouse: str, nyc: Any, conf: dict[str, str], said: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    standin.requests_log.clear()
    with caplog.at_level(logging.ERROR):
        run = dagbag.dags[nyc.dag_id].test(run_conf=conf)
    states = task_tries(run)
    assert states["extract"] == ("failed", 1)
    assert said in caplog.text
    assert [r for r in standin.requests_log if r.path.startswith("/resource/")] == []


def test_a_contract_source_that_is_not_a_field_name_is_refused(tmp_path: Path) -> None:
    from citypulse.contracts.contract import load_contracts

    text = (ROOT / "include" / "contracts" / "nyc_311.yaml").read_text()
    hostile = text.replace(
        "- {name: created_date,",
        "- {name: created_date, source: \"created_date >= '1900-01-01' OR created_date\",",
    )
    assert hostile != text
    (tmp_path / "nyc_311.yaml").write_text(hostile)
    contracts, errors = load_contracts(tmp_path)
    assert contracts == []
    (error,) = errors
    assert "nyc_311.yaml" in str(error) and "columns[" in str(error)
    assert "is not a Socrata field name" in str(error)


def test_two_contracts_claiming_one_table_are_both_refused_naming_both_files(
    tmp_path: Path,
) -> None:
    from citypulse.contracts.contract import load_contracts

    for name in ("nyc_311.yaml", "chicago_crime.yaml"):
        shutil.copy(ROOT / "include" / "contracts" / name, tmp_path / name)
    copy = (tmp_path / "nyc_311.yaml").read_text()
    copy = copy.replace("dag_id: nyc_311", "dag_id: nyc_311_again")
    copy = copy.replace("dataset_id: erm2-nwe9", "dataset_id: abcd-1234")
    copy = copy.split("\ndashboard:")[0]  # its charts draw nyc_311's views, which it has none of
    (tmp_path / "zz_copy.yaml").write_text(copy)
    contracts, errors = load_contracts(tmp_path)
    assert [c.dag_id for c in contracts] == ["chicago_crime"]
    (error,) = errors
    assert "nyc_311.yaml" in str(error) and "zz_copy.yaml" in str(error)
    assert "each claims table 'nyc_311'" in str(error)


def test_a_database_error_during_a_load_is_reported_as_itself(fresh_warehouse: str) -> None:
    """Story: the warehouse stops while a load is running; the task's error says so, not
    "connection already closed" from the rollback that followed."""
    import psycopg2

    from citypulse.warehouse.connection import connect

    with pytest.raises(psycopg2.OperationalError) as caught, connect() as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE doomed (x int)")
            cur.execute("SELECT pg_backend_pid()")
            (pid,) = cur.fetchone()
        with psycopg2.connect(fresh_warehouse) as other, other.cursor() as kill:
            kill.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with conn.cursor() as cur:
            cur.execute("INSERT INTO doomed VALUES (1)")
    assert "terminat" in str(caught.value) or "closed" in str(caught.value)
    assert query(fresh_warehouse, "SELECT to_regclass('doomed')") == [(None,)]


def test_params_must_be_real_dates(dagbag: Any) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    for value in ("2024-02-30", "0000-01-01", "2024-13-01"):
        params = dagbag.dags["nyc_311"].params
        with pytest.raises(ParamValidationError):
            params.get_param("start_date").resolve(value)
