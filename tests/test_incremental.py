"""User stories: a daily run also absorbs late and changed records of earlier days (by the
dataset's change column or Socrata's `:updated_at`, from a watermark kept in PostgreSQL);
re-fetching unchanged records changes nothing; a record the portal deleted is marked deleted
by reconciliation, not dropped; an older copy of a record never overwrites a newer one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from conftest import query
from helpers import by_id, run_city_day, seed_days, task_states

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
    standin.clear(contract.dataset_id)
    from citypulse.standin.catalog import declare_contracts

    declare_contracts(standin, [contract])
    day_before = seed_days(standin, contract, [DAY], seed=21)[DAY]
    dag = dagbag.dags[dag_id]
    assert set(task_states(run_city_day(dag, contract, DAY)).values()) == {"success"}
    first = audit(fresh_warehouse, dag_id)[0]
    assert first["change_rows"] == 0 and first["watermark"]  # first run: window only

    # The portal edits 5 records of DAY and publishes 3 late ones for DAY.
    well_formed = [r for i, r in enumerate(day_before.records) if i not in day_before.malformed]
    now_local = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.000")
    edited = [edit(r, contract, now_local) for r in well_formed[:5]]
    from citypulse.standin.generator import generate_day

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


def test_a_deleted_record_is_marked_deleted_not_dropped(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "chicago_crime")
    standin.clear(contract.dataset_id)
    from citypulse.standin.catalog import declare_contracts

    declare_contracts(standin, [contract])
    served = seed_days(standin, contract, [DAY], seed=31)[DAY]
    dag = dagbag.dags[contract.dag_id]
    run_city_day(dag, contract, DAY)
    gone = next(r for i, r in enumerate(served.records) if i not in served.malformed)["id"]
    assert standin.delete(contract.dataset_id, "id", [gone]) == 1

    conf = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat(), "reconcile": True}
    run = dag.test(run_conf=conf)
    assert set(task_states(run).values()) == {"success"}
    (row,) = query(
        fresh_warehouse,
        "SELECT cp_deleted_at IS NOT NULL FROM citypulse.chicago_crime WHERE id = %s",
        (int(gone),),
    )
    assert row == (True,)
    assert query(
        fresh_warehouse,
        "SELECT count(*) FROM citypulse.incidents WHERE city = 'chicago_crime' AND source_key = %s",
        (gone,),
    ) == [(0,)]
    # The first run may have reconciled too (on days its contract says reconcile is due).
    (recon,) = query(
        fresh_warehouse,
        "SELECT portal_keys, warehouse_keys, marked_deleted FROM citypulse.reconciliations "
        "WHERE run_id = %s",
        (run.run_id,),
    )
    well_formed = len(served.records) - len(served.malformed)
    assert recon == (len(served.records) - 1, well_formed, 1)


def test_reconciliation_refuses_to_delete_too_much(
    standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.exceptions import PortalError
    from citypulse.load import ensure_schema, ensure_table
    from citypulse.reconcile import mark_deleted
    from citypulse.warehouse import connect
    from citypulse.windows import window_for_dates

    contract = by_id(contracts, "chicago_crime")
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    with connect() as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
        cur.execute(
            "INSERT INTO citypulse.chicago_crime (id, case_number, date, primary_type, year, "
            "event_time, cp_run_id) SELECT g, 'X', %s, 'THEFT', 2025, %s, 'r' "
            "FROM generate_series(1, 10) g",
            (window.start, window.start),
        )
    with connect() as conn, pytest.raises(PortalError, match="refusing"):
        mark_deleted(conn, contract, window, {"1", "2"}, "run")
    assert query(
        fresh_warehouse, "SELECT count(*) FROM citypulse.chicago_crime WHERE cp_deleted_at IS NULL"
    ) == [(10,)]


def test_reconciliation_is_due_every_few_days(contracts: list[Any]) -> None:
    from citypulse.reconcile import trailing_window
    from citypulse.windows import window_for_dates

    contract = by_id(contracts, "nyc_311")
    due = []
    for offset in range(14):
        day = (DAY + timedelta(days=offset)).isoformat()
        target = trailing_window(contract, window_for_dates(day, day, contract.timezone))
        if target is not None:
            due.append(target)
            assert (target.end - target.start).days == contract.reconcile.trailing_days
    assert len(due) == 2


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

    from citypulse.tasks import absorbs_changes

    if run_type is not None and run_type.isupper():
        run_type = _sdk_run_type(run_type)
    context = {"dag_run": SimpleNamespace(run_type=run_type), "params": params}
    assert absorbs_changes(context) is absorbs
