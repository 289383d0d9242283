"""User stories about the files a run's tasks hand each other (under the storage root):

- a city day runs with its run files in an S3-compatible store, and nothing of the run is
  written to the worker's own disk;
- an operator clears `validate` or `load` of a finished run and it reruns correctly, because
  the run's files are kept for the retention period (the rerun changes nothing);
- once housekeeping has removed expired files, clearing such a task fails at once (no retry)
  saying to clear the run from `extract`, and nothing is loaded;
- housekeeping, which every run performs, removes the files of runs whose last write is
  older than the retention period, failed runs included, and keeps the others;
- a storage root that cannot be used fails `extract` naming its URL and connection, before
  any request reaches the portal.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from citypulse import settings
from conftest import query
from helpers import by_id, fresh_dataset, run_city_day, seed_days, task_states

pytestmark = [pytest.mark.integration]

DAY = date.today() - timedelta(days=12)


def context_for(contract: Any, day: date, run_id: str) -> dict[str, Any]:
    """The task context of the scheduled run whose data interval is the local day `day`."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(contract.timezone))
    return {
        "run_id": run_id,
        "data_interval_start": start,
        "data_interval_end": start + timedelta(days=1),
        "params": {},
    }


def age(folder: Path, days: float) -> None:
    """Make every file under `folder` look written `days` ago."""
    stamp = time.time() - days * 86400
    for path in folder.rglob("*"):
        os.utime(path, (stamp, stamp))


def local_runs(dag_id: str) -> Path:
    return settings.DATA_DIR / "runs" / dag_id


def test_a_city_day_runs_with_its_files_in_s3(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    contracts: list[Any],
    s3_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [DAY], seed=61)[DAY]
    bucket = s3_server.bucket()
    monkeypatch.setattr(settings, "STORAGE_URL", s3_server.url(bucket))
    before = sorted(local_runs(contract.dag_id).rglob("*"))
    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    (count,) = query(fresh_warehouse, "SELECT count(*) FROM citypulse.chicago_crime")
    assert count == (len(served.records) - len(served.malformed),)
    keys = s3_server.keys(bucket)
    run_keys = [k for k in keys if k.startswith("citypulse/runs/chicago_crime/")]
    names = {"/".join(k.rsplit("/", 2)[-2:]) for k in run_keys}
    assert names == {
        "accepted/part-00000.csv",
        "window/part-00000.ndjson",
        "rejects/part-00000.ndjson",
    }, keys
    assert not [k for k in keys if "/.probe/" in k]  # the storage check cleans up after itself
    assert sorted(local_runs(contract.dag_id).rglob("*")) == before  # nothing on local disk


def test_a_cleared_validate_or_load_reruns_and_expired_files_fail_at_once(
    standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse.dags import steps

    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    seed_days(standin, contract, [DAY], seed=62)
    context = context_for(contract, DAY, "scheduled__clear_me")
    extracted = steps.extract(contract.dag_id, None, context)
    validated = steps.validate(contract.dag_id, extracted, {})
    first = steps.load(contract.dag_id, validated, context)
    assert first["inserted"] == first["loaded"] > 0
    # What crosses the task boundary names objects by keys under the root, never a path.
    handed = json.dumps([extracted, validated])
    assert str(settings.DATA_DIR) not in handed and '"/' not in handed

    # Cleared after the run ended: the files are still there, the reruns change nothing.
    assert steps.validate(contract.dag_id, extracted, {}) == validated
    again = steps.load(contract.dag_id, validated, context)
    assert (again["loaded"], again["inserted"], again["updated"]) == (first["loaded"], 0, 0)

    # Past the retention period, another run's housekeeping removes them.
    folder = settings.DATA_DIR / validated["prefix"]
    age(folder, settings.RUN_RETENTION_DAYS + 1)
    other = context_for(contract, DAY, "scheduled__housekeeper")
    assert steps.housekeeping(contract.dag_id, None, other)["removed"] >= 1
    assert not folder.exists()
    audits = query(fresh_warehouse, "SELECT count(*) FROM citypulse.ingest_runs")
    for step, handed in (("load", validated), ("validate", extracted)):
        with pytest.raises(AirflowFailException) as caught:
            steps.STEPS[step](contract.dag_id, handed, context)
        message = str(caught.value)
        assert f"`{step}` needs {validated['prefix']}/" in message and "is gone" in message
        assert "Clear this run from `extract`" in message
        assert f"kept {settings.RUN_RETENTION_DAYS:g} days" in message
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.ingest_runs") == audits


def test_housekeeping_removes_expired_run_files_and_keeps_the_rest(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "seattle_crime")
    fresh_dataset(standin, contract)
    seed_days(standin, contract, [DAY], seed=63)
    runs = local_runs(contract.dag_id)
    retention = settings.RUN_RETENTION_DAYS
    for name, days in (("failed_long_ago", retention + 2), ("recent", retention - 1)):
        folder = runs / name / "extract"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.ndjson").write_text('{"offense_id": "1"}\n')
        age(runs / name, days)
    neighbour = local_runs("nyc_311") / "failed_long_ago"
    neighbour.mkdir(parents=True, exist_ok=True)
    (neighbour / "accepted.csv").write_text("x\n")
    age(neighbour, retention + 2)

    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert set(task_states(run).values()) == {"success"}
    remaining = {p.name for p in runs.iterdir()}
    assert "failed_long_ago" not in remaining
    assert "recent" in remaining
    assert any(name.startswith("manual__") for name in remaining)  # this run's own files
    assert neighbour.exists()  # another DAG's files are that DAG's housekeeping's business


def test_an_unusable_storage_root_fails_extract_before_any_portal_request(
    standin: Any, contracts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse.dags import steps

    contract = by_id(contracts, "chicago_crime")
    seed_days(standin, contract, [DAY], seed=64)
    monkeypatch.setattr(settings, "STORAGE_URL", "s3://missing_conn@citypulse-runs/prod")
    standin.requests_log.clear()
    with pytest.raises(AirflowFailException) as caught:
        steps.extract(contract.dag_id, None, context_for(contract, DAY, "scheduled__bad_root"))
    message = str(caught.value)
    assert "s3://missing_conn@citypulse-runs/prod" in message and "'missing_conn'" in message
    assert [r for r in standin.requests_log if r.path.startswith("/resource/")] == []
