"""The partition audit (`citypulse.pipeline.reconcile`): per day of the whole history, the portal's
count and newest change against the warehouse's; differing days read again and reconciled.

User stories: a record the portal deleted years ago is found and marked deleted (never
dropped); a dataset whose portal re-stamps every row is repaired by counts; an edit no daily
run saw is found by the newest change of its day; a day with a quarantined record is not
repaired forever; an audit that would delete too much is refused; every audit is recorded
and shown in `pipeline_health`, and its counts add up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from citypulse.pipeline.reconcile import DayCount, canonical, differing_days, stretches
from conftest import (
    _create_database,
    _drop_database,
    freeze_as_template,
    query,
    warehouse_of_its_own,
)
from helpers import by_id, fresh_dataset, run_city_day, seed_days, task_states, task_tries

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
    """Story: a fifth of the records are gone from the portal, above the outage floor but
    over the share one audit may delete: refused at once (no retry changes it), recorded."""
    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [YEARS_AGO], seed=55)[YEARS_AGO]
    dag = dagbag.dags[contract.dag_id]
    load_days(dag, YEARS_AGO, YEARS_AGO)
    gone = [r["unique_key"] for r in well_formed_of(served)[::5]]
    assert standin.delete(contract.dataset_id, "unique_key", gone) == len(gone)
    run = refused_audit(dag)
    assert task_tries(run)["reconcile"] == ("failed", 1)
    assert query(
        fresh_warehouse, "SELECT count(*) FROM citypulse.nyc_311 WHERE cp_deleted_at IS NOT NULL"
    ) == [(0,)]
    (outcome, refusal, repaired, _, _) = last_audit(fresh_warehouse, contract.dag_id)
    assert (outcome, repaired) == ("refused", 0) and "over the 5% of the table" in refusal


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


def held_history(standin: Any, contract: Any, dag: Any, seed: int) -> dict[date, Any]:
    """Two full days years ago and a light day (3 records) since, served and loaded: a
    history whose newest day is far under the share of the table one audit may delete."""
    from citypulse_dev.generator import generate_day

    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [YEARS_AGO, YEARS_AGO + timedelta(days=1)], seed=seed)
    served[DAY] = generate_day(contract, DAY, seed=seed, records=3)
    standin.put(contract.dataset_id, served[DAY].records, key=contract.key_column.wire_name)
    load_days(dag, YEARS_AGO, YEARS_AGO + timedelta(days=1))
    load_days(dag, DAY, DAY)
    return served


@dataclass
class HeldHistory:
    """A warehouse holding Chicago's `held_history` and the stand-in serving it."""

    dsn: str
    served: dict[date, Any]


@pytest.fixture(scope="module")
def held_template(
    dagbag: Any, standin: Any, pg_server: str, contracts: list[Any]
) -> Iterator[tuple[str, dict[date, Any], list[dict[str, Any]]]]:
    """Chicago's `held_history`, loaded once through its DAG into a template database; the
    template, what was served and the stand-in's records (system fields included)."""
    import os

    from citypulse.warehouse.connection import airflow_conn_json

    contract = by_id(contracts, "chicago_crime")
    template = _create_database(pg_server)
    previous = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = airflow_conn_json(template)
    try:
        served = held_history(standin, contract, dagbag.dags[contract.dag_id], seed=60)
    finally:
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
        else:
            os.environ["AIRFLOW_CONN_WAREHOUSE"] = previous
    freeze_as_template(pg_server, template)
    try:
        yield template, served, standin.records(contract.dataset_id)
    finally:
        _drop_database(pg_server, template)


@pytest.fixture
def history(
    held_template: tuple[str, dict[date, Any], list[dict[str, Any]]],
    standin: Any,
    pg_server: str,
    contracts: list[Any],
) -> Iterator[HeldHistory]:
    """A copy of the template as the warehouse, and the stand-in serving exactly the records
    that were loaded into it (the same `:id`, `:created_at` and `:updated_at`): as if this
    test had run `held_history` itself."""
    template, served, records = held_template
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)
    with warehouse_of_its_own(pg_server, template) as dsn:
        yield HeldHistory(dsn, served)


def stored(dsn: str, table: str) -> tuple[int, int]:
    """The table's rows not deleted, and those marked deleted."""
    (row,) = query(
        dsn,
        f"SELECT count(*) FILTER (WHERE cp_deleted_at IS NULL), "
        f"count(*) FILTER (WHERE cp_deleted_at IS NOT NULL) FROM citypulse.{table}",
    )
    return row


def last_audit(dsn: str, dag_id: str) -> tuple[Any, ...]:
    """The newest recorded audit: outcome, refusal, days repaired and disputed, disputes."""
    return query(
        dsn,
        "SELECT outcome, refusal, days_repaired, days_disputed, disputed "
        "FROM citypulse.partition_audits WHERE dag_id = %s ORDER BY id DESC LIMIT 1",
        (dag_id,),
    )[0]


def rejects(dsn: str, dag_id: str) -> int:
    """The open rejects of a city (the audit counts them with the rows of their day)."""
    return int(
        query(
            dsn,
            "SELECT count(*) FROM citypulse.rejects WHERE dag_id = %s AND resolved_at IS NULL",
            (dag_id,),
        )[0][0]
    )


def figures(refusal: str) -> tuple[int, int]:
    """The portal's count and the warehouse's a refused audit names."""
    found = re.search(r"portal counts ([\d,]+) records .*warehouse holds ([\d,]+)", refusal)
    assert found, refusal
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def refused_audit(dag: Any) -> Any:
    """A run that audits and whose audit fails (retried: an outage may pass)."""
    quiet = (DAY + timedelta(days=3)).isoformat()
    run = dag.test(run_conf={"start_date": quiet, "end_date": quiet, "reconcile": True})
    states = task_states(run)
    assert states["load"] == "success" and states["reconcile"] == "failed", states
    return run


@pytest.mark.integration
def test_a_portal_answering_nothing_is_an_outage_not_a_deletion(
    dagbag: Any, standin: Any, history: HeldHistory, contracts: list[Any]
) -> None:
    """Story: behind a broken proxy the portal answers `200 []`. The audit must not read that
    as every record deleted (nor delete the newest days, small enough to pass the delete
    guard): it refuses, with the portal's count and the warehouse's, and records the refused
    audit for the operator. (Only the audit's grouped query answers nothing here: a `[]` to
    the window's own `count(*)` already fails extract, see test_portal_client.)"""
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "chicago_crime")
    dag = dagbag.dags[contract.dag_id]
    before = stored(history.dsn, contract.table)
    standin.add_fault(Fault(body="[]", dataset_id=contract.dataset_id, grouped=True, times=None))
    try:
        run = refused_audit(dag)
    finally:
        standin.clear_faults()
    assert stored(history.dsn, contract.table) == before
    assert task_tries(run)["reconcile"] == ("failed", contract.retries + 1)  # may pass: retried
    (outcome, refusal, repaired, _, _) = last_audit(history.dsn, contract.dag_id)
    assert (outcome, repaired) == ("refused", 0)
    assert figures(refusal) == (0, before[0] + rejects(history.dsn, contract.dag_id))

    # The operator sees it on the health page, with the reason (the page's API, in process).
    from helpers import ui_get

    (response,) = ui_get("/api/health")
    city = next(c for c in response.json() if c["dag_id"] == contract.dag_id)
    assert city["status"] == "failing", city["reason"]  # the audit failed its run...
    assert "failed in reconcile" in city["reason"]  # ...and the page says why; once a later
    assert f"(the partition audit was refused: {refusal})" in city["reason"]  # run succeeds,
    # the city shows as drifting with the same reason (test_ui_status)


@pytest.mark.integration
def test_a_portal_counting_far_fewer_records_than_the_warehouse_holds_is_refused(
    dagbag: Any, standin: Any, history: HeldHistory, contracts: list[Any]
) -> None:
    """Story: the portal's count falls to 40 % of what the warehouse holds overnight (a
    half-published dataset, an index rebuilding): an outage until shown otherwise."""
    contract = by_id(contracts, "chicago_crime")
    dag = dagbag.dags[contract.dag_id]
    before = stored(history.dsn, contract.table)
    keys = [r["id"] for r in standin.records(contract.dataset_id) if r.get("id")]
    gone = [key for i, key in enumerate(keys) if i % 5 not in (0, 1)]  # 60 % of each day
    assert standin.delete(contract.dataset_id, "id", gone) == len(gone)
    refused_audit(dag)
    assert stored(history.dsn, contract.table) == before
    (outcome, refusal, _, _, _) = last_audit(history.dsn, contract.dag_id)
    portal, held = figures(refusal)
    assert outcome == "refused" and held == before[0] + rejects(history.dsn, contract.dag_id)
    assert 0.35 * held < portal < 0.45 * held


@pytest.mark.integration
def test_a_day_the_portal_emptied_and_a_few_deleted_records_are_still_repaired(
    dagbag: Any, standin: Any, history: HeldHistory, contracts: list[Any]
) -> None:
    """Story (the outage floor's counterpart): records genuinely deleted, a whole light day
    of them included, are repaired as before: the portal still answers for most days."""
    contract = by_id(contracts, "chicago_crime")
    dag = dagbag.dags[contract.dag_id]
    served = history.served
    (live, _) = stored(history.dsn, contract.table)
    one = well_formed_of(served[YEARS_AGO])[0]["id"]
    assert not served[DAY].malformed
    light = [r["id"] for r in served[DAY].records]
    assert standin.delete(contract.dataset_id, "id", [one, *light]) == 1 + len(light)
    reconcile(dag)
    assert audits(history.dsn, contract.dag_id)[-1][1:3] == (2, 2)
    assert last_audit(history.dsn, contract.dag_id)[:2] == ("complete", None)
    assert stored(history.dsn, contract.table) == (live - 1 - len(light), 1 + len(light))


@pytest.mark.integration
def test_a_re_read_answering_nothing_for_a_day_the_portal_counts_deletes_nothing(
    dagbag: Any, standin: Any, history: HeldHistory, contracts: list[Any]
) -> None:
    """Story: the grouped count is right (a record of the light day is gone), but the day's
    re-read answers no record and counts 0 (a count answering `[]` is refused by the client
    itself): the repair would delete the whole day, under the delete guard. The re-read falls
    below the outage floor of the day's grouped count."""
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "chicago_crime")
    dag = dagbag.dags[contract.dag_id]
    served = history.served
    before = stored(history.dsn, contract.table)
    assert standin.delete(contract.dataset_id, "id", [served[DAY].records[0]["id"]]) == 1
    for body, aggregate in (("[]", False), ('[{"n": "0"}]', True)):
        standin.add_fault(
            Fault(body=body, dataset_id=contract.dataset_id, aggregate=aggregate, grouped=False,
                  times=None)
        )  # fmt: skip
    try:
        refused_audit(dag)
    finally:
        standin.clear_faults()
    assert stored(history.dsn, contract.table) == before
    (outcome, refusal, _, _, _) = last_audit(history.dsn, contract.dag_id)
    assert outcome == "refused" and "read 0 records" in refusal, refusal


@pytest.mark.integration
def test_a_grouped_count_that_disagrees_with_its_records_is_reported_not_repaired_again(
    dagbag: Any, standin: Any, history: HeldHistory, contracts: list[Any]
) -> None:
    """Story: the portal's grouped query counts 2 records more for a day than reading the
    day gives (a stale index), audit after audit. The first audit reads the day again; the
    next ones report the day as disputed, with both numbers, and neither re-read it nor
    record it as agreed. Once the count is right again, the day agrees."""
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, "chicago_crime")
    dag = dagbag.dags[contract.dag_id]
    (held,) = query(
        history.dsn,
        "SELECT count(*) FROM citypulse.chicago_crime WHERE date::date = %s",
        (YEARS_AGO,),
    )[0]
    held += query(
        history.dsn,
        "SELECT count(*) FROM citypulse.rejects WHERE dag_id = 'chicago_crime' "
        "AND event_day = %s AND resolved_at IS NULL",
        (YEARS_AGO,),
    )[0][0]
    lie = Fault(
        adjust={"n": 2},
        adjust_where={"day": YEARS_AGO.isoformat()},
        dataset_id=contract.dataset_id,
        grouped=True,
        times=None,
    )
    standin.add_fault(lie)
    try:
        reconcile(dag)  # reads the day again: the records are what the warehouse holds
        assert audits(history.dsn, contract.dag_id)[-1][1:5] == (1, 1, 0, 0)
        reconcile(dag)
        reconcile(dag)
    finally:
        standin.clear_faults()
    # The day read again once, then neither read again nor counted as differing.
    assert [a[1:3] for a in audits(history.dsn, contract.dag_id)[1:]] == [(0, 0), (0, 0)]
    for audit in query(
        history.dsn,
        "SELECT days_differing, days_repaired, days_disputed, disputed "
        "FROM citypulse.partition_audits WHERE dag_id = 'chicago_crime' ORDER BY id",
    )[1:]:
        expected = [{"day": YEARS_AGO.isoformat(), "grouped_rows": held + 2, "record_rows": held}]
        assert audit == (0, 0, 1, expected)
    days = dict(
        query(
            history.dsn,
            "SELECT day, portal_rows FROM citypulse.partition_days WHERE dag_id = %s",
            (contract.dag_id,),
        )
    )
    assert YEARS_AGO not in days and days[YEARS_AGO + timedelta(days=1)] > 0
    reconcile(dag)
    assert last_audit(history.dsn, contract.dag_id)[2:4] == (0, 0)
    assert query(
        history.dsn,
        "SELECT portal_rows FROM citypulse.partition_days WHERE dag_id = %s AND day = %s",
        (contract.dag_id, YEARS_AGO),
    ) == [(held,)]
