"""The partition audit (`citypulse.pipeline.reconcile`): per day of the whole history, the portal's
count and newest change against the warehouse's; differing days read again and reconciled.

User stories: a record the portal deleted years ago is found and marked deleted (never
dropped); a dataset whose portal re-stamps every row is repaired by counts; an edit no daily
run saw is found by the newest change of its day; a day with a quarantined record is not
repaired forever; an audit that would delete too much is refused; every audit is recorded
and shown in `pipeline_health`, and its counts add up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from citypulse.pipeline.reconcile import DayCount, canonical, differing_days, stretches
from conftest import query
from helpers import by_id, fresh_dataset, run_city_day, seed_days, task_states

DAY = date.today() - timedelta(days=25)
YEARS_AGO = DAY - timedelta(days=4 * 365)


def test_days_differ_by_count_or_by_a_newer_change_on_the_portal() -> None:
    d1, d2, d3, d4, d5 = (date(2020, 1, i) for i in range(1, 6))
    portal = {
        d1: DayCount(3, "2020-01-05T00:00:00.000"),  # agrees
        d2: DayCount(4, "2020-01-05T00:00:00.000"),  # a row more on the portal
        d3: DayCount(2, "2020-02-01T00:00:00.000"),  # an edit the warehouse never saw
        d4: DayCount(2, "2020-02-01T00:00:00.000"),  # newest change rejected, agreed before
    }
    warehouse = {
        d1: DayCount(3, "2020-01-05T00:00:00.000"),
        d2: DayCount(3, "2020-01-05T00:00:00.000"),
        d3: DayCount(2, "2020-01-05T00:00:00.000"),
        d4: DayCount(2, "2020-01-09T00:00:00.000"),
        d5: DayCount(1, None),  # gone from the portal
    }
    verified = {d4: DayCount(2, "2020-02-01T00:00:00.000")}
    assert differing_days(portal, warehouse, verified, True) == [d5, d3, d2]
    assert differing_days(portal, warehouse, verified, False) == [d5, d2]  # re-stamping


def test_consecutive_days_are_read_in_stretches_newest_first() -> None:
    days = [date(2020, 1, d) for d in (1, 2, 3, 7, 9, 10)]
    assert stretches(days) == [
        (date(2020, 1, 9), date(2020, 1, 10)),
        (date(2020, 1, 7), date(2020, 1, 7)),
        (date(2020, 1, 1), date(2020, 1, 3)),
    ]
    assert stretches([date(2020, 1, 1) + timedelta(days=i) for i in range(40)], 31)[1] == (
        date(2020, 1, 1),
        date(2020, 1, 31),
    )


def test_timestamps_compare_as_one_text() -> None:
    assert canonical("2025-10-14T05:00:01.000Z") == "2025-10-14T05:00:01.000"
    assert canonical("2025-10-14T05:00:01.123") == "2025-10-14T05:00:01.123"
    assert canonical(datetime(2025, 10, 14, 5, 0, 1, 123456)) == "2025-10-14T05:00:01.123"
    assert canonical(None) is None


def audits(dsn: str, dag_id: str) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT days_checked, days_differing, days_repaired, rows_inserted, rows_updated, "
        "rows_deleted, rejects_resolved FROM citypulse.partition_audits WHERE dag_id = %s "
        "ORDER BY id",
        (dag_id,),
    )


def reconcile(dag: Any) -> Any:
    """A manual run that audits (the `reconcile` param), for a day the portal does not hold."""
    quiet = (DAY + timedelta(days=3)).isoformat()
    run = dag.test(run_conf={"start_date": quiet, "end_date": quiet, "reconcile": True})
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    return run


def load_days(dag: Any, first: date, last: date) -> None:
    reload = {"start_date": first.isoformat(), "end_date": last.isoformat()}
    assert str(dag.test(run_conf=reload).state) == "success"


@pytest.mark.integration
def test_a_record_deleted_years_ago_is_found_and_marked_deleted(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [YEARS_AGO, DAY], seed=51)
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, YEARS_AGO, YEARS_AGO)
    run_city_day(dag, contract, DAY)
    first = reconcile(dag)  # agrees: nothing to repair, days recorded as verified
    # Days held: the years-old day, the daily run's and the quiet day the audit ran for.
    assert audits(fresh_warehouse, contract.dag_id)[-1] == (3, 0, 0, 0, 0, 0, 0)

    gone = next(
        r for i, r in enumerate(served[YEARS_AGO].records) if i not in served[YEARS_AGO].malformed
    )
    assert standin.delete(contract.dataset_id, "id", [gone["id"]]) == 1
    second = reconcile(dag)
    assert second.run_id != first.run_id
    (_, differing, repaired, inserted, updated, deleted, _) = audits(
        fresh_warehouse, contract.dag_id
    )[1]
    assert (differing, repaired, inserted, updated, deleted) == (1, 1, 0, 0, 1)
    (row,) = query(
        fresh_warehouse,
        "SELECT cp_deleted_at IS NOT NULL FROM citypulse.chicago_crime WHERE id = %s",
        (int(gone["id"]),),
    )
    assert row == (True,)
    assert query(
        fresh_warehouse,
        "SELECT count(*) FROM citypulse.incidents WHERE city = 'chicago_crime' AND source_key = %s",
        (gone["id"],),
    ) == [(0,)]
    # The repaired day's load is audited like any other: its counts add up to the portal's.
    (portal, extracted, loaded, rejected) = query(
        fresh_warehouse,
        "SELECT portal_rows, extracted, loaded, rejected FROM citypulse.ingest_runs "
        "WHERE run_id = %s ORDER BY id DESC LIMIT 1",
        (second.run_id,),
    )[0]
    assert portal == extracted == loaded + rejected == len(served[YEARS_AGO].records) - 1
    # Once repaired, the day agrees: the next audit finds nothing, quarantined rows included.
    reconcile(dag)
    assert audits(fresh_warehouse, contract.dag_id)[-1][1:3] == (0, 0)
    health = query(
        fresh_warehouse,
        "SELECT last_audit_days_checked, last_audit_days_repaired FROM citypulse.pipeline_health "
        "WHERE city = 'chicago_crime'",
    )
    assert health == [(3, 0)]


@pytest.mark.integration
def test_an_edit_no_daily_run_saw_is_found_by_its_days_newest_change(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: an edit the watermark moved past (a run that failed over it, a restored backup)
    shows as a change on the portal newer than any the warehouse holds for its day."""
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [YEARS_AGO], seed=52)[YEARS_AGO]
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, YEARS_AGO, YEARS_AGO)
    target = next(r for i, r in enumerate(served.records) if i not in served.malformed)
    edited = {**target, "primary_type": "EDITED QUIETLY", "updated_on": "2030-01-01T00:00:00.000"}
    standin.put(contract.dataset_id, [edited], key="id")
    reconcile(dag)
    assert audits(fresh_warehouse, contract.dag_id)[-1][1:5] == (1, 1, 0, 1)
    assert query(
        fresh_warehouse,
        "SELECT primary_type FROM citypulse.chicago_crime WHERE id = %s",
        (int(target["id"]),),
    ) == [("EDITED QUIETLY",)]


@pytest.mark.integration
def test_a_dataset_whose_portal_re_stamps_every_row_is_repaired_by_counts(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: Montgomery republishes its dataset daily (every `:updated_at` moves), so its
    runs look back only 7 days; a record published years late and one removed years later
    are the audit's, and the re-stamping itself is no difference."""
    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "montgomery_traffic")
    fresh_dataset(standin, contract)
    added_day, removed_day = YEARS_AGO, YEARS_AGO + timedelta(days=1)
    served = seed_days(standin, contract, [added_day, removed_day], seed=53)
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, added_day, removed_day)
    late = generate_day(contract, added_day, seed=54, records=1).records[0]
    standin.put(contract.dataset_id, [{k: v for k, v in late.items() if not k.startswith(":")}])
    removed = well_formed_of(served[removed_day])[0]
    doomed = next(
        r[":id"]
        for r in standin.records(contract.dataset_id)
        if r.get("seq_id") == removed["seq_id"] and r.get("date_of_stop") == removed["date_of_stop"]
    )
    assert standin.delete(contract.dataset_id, ":id", [doomed]) == 1
    standin.put(contract.dataset_id, standin.records(contract.dataset_id), key=":id")  # re-stamp
    reconcile(dag)
    (_, differing, repaired, inserted, _, deleted, _) = audits(fresh_warehouse, contract.dag_id)[-1]
    assert (differing, repaired, inserted, deleted) == (2, 2, 1, 1)
    stored = query(
        fresh_warehouse,
        "SELECT row_id FROM citypulse.montgomery_traffic WHERE cp_deleted_at IS NULL",
    )
    rejected = query(
        fresh_warehouse,
        "SELECT record_key FROM citypulse.rejects WHERE dag_id = 'montgomery_traffic' "
        "AND resolved_at IS NULL",
    )
    portal = {r[":id"] for r in standin.records(contract.dataset_id)}
    assert {r[0] for r in stored} | {r[0] for r in rejected} == portal


def well_formed_of(served: Any) -> list[dict[str, Any]]:
    return [r for i, r in enumerate(served.records) if i not in served.malformed]


@pytest.mark.integration
def test_an_audit_that_would_delete_too_much_is_refused(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    seed_days(standin, contract, [YEARS_AGO], seed=55)
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, YEARS_AGO, YEARS_AGO)
    fresh_dataset(standin, contract)  # a portal answering with nothing
    quiet = (DAY + timedelta(days=3)).isoformat()
    run = dag.test(run_conf={"start_date": quiet, "end_date": quiet, "reconcile": True})
    states = task_states(run)
    assert states["reconcile"] == "failed" and states["load"] == "success"
    assert query(
        fresh_warehouse, "SELECT count(*) FROM citypulse.nyc_311 WHERE cp_deleted_at IS NOT NULL"
    ) == [(0,)]


def test_the_audit_is_due_every_few_days(contracts: list[Any]) -> None:
    from citypulse.pipeline.reconcile import audit_due
    from citypulse.pipeline.windows import window_for_dates

    contract = by_id(contracts, "nyc_311")
    due = [
        offset
        for offset in range(14)
        if audit_due(
            contract,
            window_for_dates(
                (DAY + timedelta(days=offset)).isoformat(),
                (DAY + timedelta(days=offset)).isoformat(),
                contract.timezone,
            ),
        )
    ]
    assert len(due) == 2 and due[1] - due[0] == contract.reconcile.every_days


@pytest.mark.integration
def test_an_audits_repair_keeps_its_validation_report_beside_the_runs_own(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: an operator asks why a repaired day holds what it holds. The audit read the day
    again through the same validate as any run, so its report is kept (stage `reconcile`);
    the run's Validation tab still shows the run's own report."""
    import psycopg2

    from citypulse.warehouse.sqlfiles import render

    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [YEARS_AGO], seed=57)[YEARS_AGO]
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, YEARS_AGO, YEARS_AGO)
    gone = next(r for i, r in enumerate(served.records) if i not in served.malformed)
    assert standin.delete(contract.dataset_id, "unique_key", [gone["unique_key"]]) == 1
    run = reconcile(dag)
    assert audits(fresh_warehouse, contract.dag_id)[-1][2] == 1  # the day was repaired
    reports = query(
        fresh_warehouse,
        "SELECT stage, passed, (report ->> 'extracted')::int FROM citypulse.validation_reports "
        "WHERE dag_id = %s AND run_id = %s ORDER BY id",
        (contract.dag_id, run.run_id),
    )
    # The run's own day (the portal holds nothing for it), then the repaired day's records.
    assert reports == [("validate", True, 0), ("reconcile", True, len(served.records) - 1)]
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        cur.execute(
            render("ui/run_validation.sql"), {"dag_id": contract.dag_id, "run_id": run.run_id}
        )
        shown = cur.fetchall()
    conn.close()
    assert [(passed, report["extracted"]) for passed, _, report, _ in shown] == [(True, 0)]
