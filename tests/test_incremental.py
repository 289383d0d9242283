"""User stories: a daily run also absorbs late and changed records of earlier days, of any
age (by the dataset's change column or Socrata's `:updated_at`, from a watermark kept in
PostgreSQL); re-fetching unchanged records changes nothing; a field the portal no longer
sends becomes NULL everywhere downstream; every replaced version is kept in the history; an
older copy of a record never overwrites a newer one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from conftest import query
from helpers import by_id, fresh_dataset, run_city_day, seed_days, task_states

pytestmark = [pytest.mark.integration]

DAY = date.today() - timedelta(days=20)


def audit(dsn: str, dag_id: str) -> list[dict[str, Any]]:
    rows = query(
        dsn,
        "SELECT window_start, extracted, loaded, rejected, inserted, updated, unchanged, "
        "window_rows, change_rows, watermark FROM citypulse.ingest_runs "
        "WHERE dag_id = %s ORDER BY id",
        (dag_id,),
    )
    names = [
        "window_start",
        "extracted",
        "loaded",
        "rejected",
        "inserted",
        "updated",
        "unchanged",
        "window_rows",
        "change_rows",
        "watermark",
    ]
    return [dict(zip(names, row, strict=True)) for row in rows]


def local_now(contract: Any) -> str:
    """Now as the portal stamps a floating change column: the dataset's wall time."""
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(contract.timezone)).strftime("%Y-%m-%dT%H:%M:%S.000")


def edit(record: dict[str, Any], contract: Any, now_local: str) -> dict[str, Any]:
    """The portal's edit of a record: a new category, and a newer change time if the change
    column is a dataset column (`:updated_at` the stand-in moves by itself)."""
    changed = {**record, contract.incidents.category: "EDITED LATER"}
    change = contract.change_column
    if not change.wire_name.startswith(":"):
        changed[change.wire_name] = now_local
    return changed


@pytest.mark.parametrize("dag_id", ["chicago_crime", "nyc_311"])
def test_next_daily_run_absorbs_late_and_changed_records(
    dag_id: str, dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, dag_id)
    key = contract.key_column.wire_name
    fresh_dataset(standin, contract)
    day_before = seed_days(standin, contract, [DAY], seed=21)[DAY]
    dag = dagbag.dags[dag_id]
    assert set(task_states(run_city_day(dag, contract, DAY)).values()) == {"success"}
    first = audit(fresh_warehouse, dag_id)[0]
    assert first["change_rows"] == 0 and first["watermark"]  # first run: window only

    # The portal edits 5 records of DAY and publishes 3 late ones for DAY.
    well_formed = [r for i, r in enumerate(day_before.records) if i not in day_before.malformed]
    now_local = local_now(contract)
    edited = [edit(r, contract, now_local) for r in well_formed[:5]]
    from citypulse_dev.generator import generate_day

    late = generate_day(contract, DAY, seed=99, records=40).records[:3]
    # Generated keys depend on the day only: give the late records keys of their own.
    late = [
        edit(r, contract, now_local)
        | {contract.incidents.category: "LATE", key: str(int(r[key]) + 7_000_000)}
        for r in late
    ]
    standin.put(contract.dataset_id, edited, key=key)
    standin.put(contract.dataset_id, late, key=key)
    next_day = DAY + timedelta(days=1)
    following = seed_days(standin, contract, [next_day], seed=22)[next_day]
    following_ok = len(following.records) - len(following.malformed)

    run = run_city_day(dag, contract, next_day)
    assert set(task_states(run).values()) == {"success"}
    second = audit(fresh_warehouse, dag_id)[1]
    assert second["change_rows"] >= len(edited) + len(late)
    assert second["updated"] == len(edited)
    assert second["inserted"] == following_ok + len(late)
    assert second["extracted"] == second["loaded"] + second["rejected"]
    assert second["watermark"] > first["watermark"]
    table, category = contract.table, contract.incidents.category
    rows = dict(
        query(
            fresh_warehouse,
            f"SELECT {contract.key}::text, {category} FROM citypulse.{table} "
            f"WHERE {contract.event_time} < %s",
            (datetime.combine(next_day, datetime.min.time()),),
        )
    )
    for record in edited:
        assert rows[str(record[key])] == "EDITED LATER"
    for record in late:
        assert rows[str(record[key])] == "LATE"

    # Rerunning the next day re-fetches the newest changes: nothing changes.
    snapshot = query(fresh_warehouse, f"SELECT * FROM citypulse.{table} ORDER BY 1")
    run_city_day(dag, contract, next_day)
    third = audit(fresh_warehouse, dag_id)[2]
    assert (third["inserted"], third["updated"]) == (0, 0)
    assert query(fresh_warehouse, f"SELECT * FROM citypulse.{table} ORDER BY 1") == snapshot


def well_formed(served: Any) -> list[dict[str, Any]]:
    return [r for i, r in enumerate(served.records) if i not in served.malformed]


def test_an_edit_of_any_age_is_absorbed_and_removed_coordinates_leave_everything_downstream(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: three years after a day was loaded, the city withdraws the locations of some of
    its records and reclassifies others (Chicago did so for 605 records in one month). The
    next daily run absorbs every change, whatever its age: the coordinates become NULL and
    leave `incidents`' cells and `hex_daily_counts`; each replaced version is kept in the
    history, and `<table>_changes` says what changed in that run."""

    contract = by_id(contracts, "chicago_crime")
    key = contract.key_column.wire_name
    fresh_dataset(standin, contract)
    old_day = DAY - timedelta(days=3 * 365)
    served = seed_days(standin, contract, [old_day, DAY], seed=41)
    dag = dagbag.dags[contract.dag_id]
    reload = {"start_date": old_day.isoformat(), "end_date": old_day.isoformat()}
    assert str(dag.test(run_conf=reload).state) == "success"
    assert set(task_states(run_city_day(dag, contract, DAY)).values()) == {"success"}

    located = [r for r in well_formed(served[old_day]) if r.get(contract.latitude)]
    now_local = local_now(contract)
    withdrawn = [
        {k: v for k, v in r.items() if k not in (contract.latitude, contract.longitude, "location")}
        | {"updated_on": now_local}
        for r in located[:5]
    ]
    edited = [edit(r, contract, now_local) for r in located[5:8]]
    standin.put(contract.dataset_id, withdrawn + edited, key=key)
    before = dict(
        query(
            fresh_warehouse,
            "SELECT local_day, sum(incidents) FROM citypulse.hex_daily_counts "
            "WHERE city = 'chicago_crime' GROUP BY 1",
        )
    )
    next_day = DAY + timedelta(days=1)
    seed_days(standin, contract, [next_day], seed=43)
    run = run_city_day(dag, contract, next_day)
    assert set(task_states(run).values()) == {"success"}

    last = audit(fresh_warehouse, contract.dag_id)[-1]
    assert last["change_rows"] >= 8 and last["updated"] == 8
    rows = {
        str(k): (lat, lon, h3, category)
        for k, lat, lon, h3, category in query(
            fresh_warehouse,
            "SELECT id, latitude, longitude, h3_r8, primary_type FROM citypulse.chicago_crime "
            "WHERE date < %s",
            (datetime.combine(old_day + timedelta(days=1), datetime.min.time()),),
        )
    }
    assert all(rows[str(r[key])][:3] == (None, None, None) for r in withdrawn)
    assert all(rows[str(r[key])][3] == "EDITED LATER" for r in edited)
    gone = [str(r[key]) for r in withdrawn]
    assert query(
        fresh_warehouse,
        "SELECT count(*) FROM citypulse.incidents WHERE source_key = ANY(%s) AND h3_r8 IS NULL",
        (gone,),
    ) == [(5,)]
    after = dict(
        query(
            fresh_warehouse,
            "SELECT local_day, sum(incidents) FROM citypulse.hex_daily_counts "
            "WHERE city = 'chicago_crime' GROUP BY 1",
        )
    )
    assert after[old_day] == before[old_day] - 5

    # History: one replaced version per update, as it was; the changes view names the run.
    history = query(
        fresh_warehouse,
        "SELECT id::text, latitude IS NOT NULL, primary_type, replaced_by_run, "
        "valid_to > valid_from FROM citypulse.chicago_crime_history",
    )
    assert sorted(h[0] for h in history) == sorted(str(r[key]) for r in withdrawn + edited)
    assert all(located and h[1] and h[3] == run.run_id and h[4] for h in history)
    assert not any(h[2] == "EDITED LATER" for h in history)
    changes = query(
        fresh_warehouse,
        "SELECT record_key::text, changed_columns, run_id FROM citypulse.chicago_crime_changes",
    )
    changed = {k: columns for k, columns, run_id in changes if run_id == run.run_id}
    assert {"latitude", "longitude", "h3_r8", "h3_r7"} <= set(changed[gone[0]])
    assert "primary_type" in changed[str(edited[0][key])]
    moment = query(
        fresh_warehouse,
        "SELECT primary_type FROM citypulse.chicago_crime_versions WHERE id = %s "
        "AND valid_from <= %s AND %s < valid_to",
        (int(edited[0][key]), history_moment := datetime.now().astimezone(), history_moment),
    )
    assert moment == [("EDITED LATER",)]


def _sdk_run_type(name: str) -> Any:
    from airflow.sdk.api.datamodels._generated import DagRunType

    return DagRunType[name]


@pytest.mark.parametrize(
    ("run_type", "params", "absorbs"),
    [
        ("BACKFILL", {}, False),  # what a task gets from a real scheduler's backfill
        ("SCHEDULED", {}, True),
        ("MANUAL", {}, True),
        ("MANUAL", {"start_date": "2025-06-01", "end_date": "2025-06-02"}, False),
        ("backfill", {}, False),  # a plain string, as dag.test() may hand it
        (None, {}, True),
    ],
)
def test_only_scheduled_and_plain_manual_runs_absorb_changes(
    run_type: str | None, params: dict[str, str], absorbs: bool
) -> None:
    """Story: an engineer backfills old days; the backfill loads exactly those days and
    leaves change capture (and the watermark) to the daily runs."""
    from types import SimpleNamespace

    from citypulse.dags.steps import absorbs_changes

    if run_type is not None and run_type.isupper():
        run_type = _sdk_run_type(run_type)
    context = {"dag_run": SimpleNamespace(run_type=run_type), "params": params}
    assert absorbs_changes(context) is absorbs


def test_a_change_stamp_from_the_future_does_not_freeze_change_capture(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Story (Chicago, 2026): one record of an old day says it was updated on 2202-01-01. The
    watermark must not move to 2202, or every later edit would wait for the weekly audit:
    the next watermark stays at the run's start, the run warns about the record, and an edit
    made after it is absorbed by the next daily run."""
    import logging

    contract = by_id(contracts, "chicago_crime")
    key = contract.key_column.wire_name
    fresh_dataset(standin, contract)
    old_day = DAY - timedelta(days=10)
    served = seed_days(standin, contract, [old_day, DAY], seed=51)
    dag = dagbag.dags[contract.dag_id]
    reload = {"start_date": old_day.isoformat(), "end_date": old_day.isoformat()}
    assert str(dag.test(run_conf=reload).state) == "success"
    assert set(task_states(run_city_day(dag, contract, DAY)).values()) == {"success"}

    records = well_formed(served[old_day])
    stamped = edit(records[0], contract, "2202-01-01T00:00:00.000")
    standin.put(contract.dataset_id, [stamped], key=key)
    next_day = DAY + timedelta(days=1)
    seed_days(standin, contract, [next_day], seed=52)
    with caplog.at_level(logging.WARNING):
        assert set(task_states(run_city_day(dag, contract, next_day)).values()) == {"success"}
    watermark = audit(fresh_warehouse, contract.dag_id)[-1]["watermark"]
    assert watermark is not None and watermark < "2030", watermark
    assert "2202-01-01T00:00:00.000" in caplog.text and "from the future" in caplog.text

    later = edit(records[1], contract, local_now(contract))
    standin.put(contract.dataset_id, [later], key=key)
    following = next_day + timedelta(days=1)
    seed_days(standin, contract, [following], seed=53)
    assert set(task_states(run_city_day(dag, contract, following)).values()) == {"success"}
    category = contract.incidents.category
    assert query(
        fresh_warehouse,
        f"SELECT {category} FROM citypulse.{contract.table} WHERE {contract.key}::text = %s",
        (str(records[1][key]),),
    ) == [("EDITED LATER",)]
