"""User story (issue 11's measurement, replayed): the warehouse holds Chicago's portal as it
was on 2022-12-01; the portal moves on to its 2022-12-31 state (610 records edited, 605 of
them losing their coordinates, 132 added, many dated years back, 1 removed). The next daily
run absorbs every change and addition whatever its date; the partition audit then finds the
removed record. The warehouse equals the second snapshot, record for record. Read through
SODA3 from a portal that retired SODA 2 (issue 20: the real snapshot loads exactly through
SODA3; the SODA 2.1 path is the rest of the suite's).

Reads the real extracts in ../shared/realdata (skipped when absent).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import query
from helpers import by_id, fresh_dataset, run_city_day, task_states
from test_realdata import CHICAGO_DEC01, CHICAGO_DEC31, adapted

pytestmark = [pytest.mark.realdata, pytest.mark.integration, pytest.mark.slow]


def serve(standin: Any, contract: Any, records: list[dict[str, Any]]) -> None:
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, records, key="id")


def test_the_real_chicago_snapshots_replay_into_an_equal_warehouse(
    realdata: Path, dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("SOCRATA_APP_TOKEN", "tok-cmVwbGF5LXNvZGEz")  # auto: SODA3
    standin.configure(soda2="retired", soda3_shape="data")
    standin.requests_log.clear()
    try:
        replay(realdata, dagbag, standin, fresh_warehouse, contracts)
    finally:
        standin.configure(soda2="served", soda3_shape="rows")
    assert not [r for r in standin.requests_log if r.path.startswith("/resource/")]


def replay(
    realdata: Path, dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "chicago_crime")
    before = adapted(realdata, CHICAGO_DEC01)
    after = {r["id"]: r for r in adapted(realdata, CHICAGO_DEC31)}
    dag = dagbag.dags[contract.dag_id]

    serve(standin, contract, before)
    for year in range(2015, 2023):  # one reload a year: a run loads at most max_window_days
        history = {"start_date": f"{year}-01-01", "end_date": f"{year}-12-31"}
        if year == 2022:
            history["end_date"] = "2022-11-30"
        assert str(dag.test(run_conf=history).state) == "success"
    assert set(task_states(run_city_day(dag, contract, date(2022, 12, 1))).values()) == {"success"}

    serve(standin, contract, list(after.values()))
    run = run_city_day(dag, contract, date(2022, 12, 30))
    assert set(task_states(run).values()) == {"success"}
    (portal, extracted, inserted, updated, changes) = query(
        fresh_warehouse,
        "SELECT portal_rows, extracted, inserted, updated, change_rows FROM "
        "citypulse.ingest_runs WHERE run_id = %s",
        (run.run_id,),
    )[0]
    assert portal == extracted and changes >= 742  # 610 edited + 132 added, of any age
    assert (inserted, updated) == (132, 610)
    (withdrawn,) = query(
        fresh_warehouse,
        "SELECT count(*) FROM citypulse.chicago_crime_history h JOIN citypulse.chicago_crime t "
        "USING (id) WHERE h.latitude IS NOT NULL AND t.latitude IS NULL",
    )
    assert withdrawn == (605,)

    audit = dag.test(
        run_conf={"start_date": "2022-12-30", "end_date": "2022-12-30", "reconcile": True}
    )
    assert set(task_states(audit).values()) == {"success"}
    (deleted,) = query(
        fresh_warehouse,
        "SELECT rows_deleted FROM citypulse.partition_audits WHERE run_id = %s",
        (audit.run_id,),
    )
    assert deleted == (1,)

    stored = {
        str(key): (lat, arrest)
        for key, lat, arrest in query(
            fresh_warehouse,
            "SELECT id, latitude, arrest FROM citypulse.chicago_crime WHERE cp_deleted_at IS NULL",
        )
    }
    rejected = {
        key
        for (key,) in query(
            fresh_warehouse,
            "SELECT record_key FROM citypulse.rejects WHERE dag_id = 'chicago_crime' "
            "AND resolved_at IS NULL",
        )
    }
    assert set(stored) | rejected == set(after)
    for key, (lat, arrest) in stored.items():
        record = after[key]
        assert (lat is None) == ("latitude" not in record), key
        assert str(arrest).lower() == str(record["arrest"]).lower(), key
