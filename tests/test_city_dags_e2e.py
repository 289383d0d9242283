"""User story: every city DAG, run for one day with `dag.test()`, lands exactly what the portal
served for that local day in typed PostgreSQL tables, quarantines the malformed records with a
reason, builds views that answer the source projects' questions, and a rerun changes nothing;
through either Socrata API: SODA 2.1 (no app token), and SODA3 (with a token, the portal
refusing SODA 2 and answering SODA3 as an object with a `data` list), each on a warehouse of
its own.

Real parts throughout: the SODA stand-in over HTTP (through `sodapy` for SODA 2.1), a real
PostgreSQL, and a real Airflow metadata DB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import query, warehouse_of_its_own
from helpers import (
    airflow_cli,
    contracts_with_unplaced,
    fresh_dataset,
    logical_date_for,
    run_city_day,
    seed_days,
    task_states,
)

pytestmark = [pytest.mark.integration]

# A recent day, so views over "the last 7 days" include it.
DAY = date.today() - timedelta(days=3)
PG_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "double precision": "double precision",
    "boolean": "boolean",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "date": "date",
}


@pytest.fixture(scope="module", params=["soda2", "soda3"])
def soda_api(request: pytest.FixtureRequest, standin: Any) -> Iterator[str]:
    """The API the runs read the portal with; under SODA3 the portal has retired SODA 2."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYPULSE_SODA_API", request.param)
        if request.param == "soda3":
            env.setenv("SOCRATA_APP_TOKEN", "tok-e2e-c29kYTM")
            standin.configure(soda2="retired", soda3_shape="data")
        try:
            yield str(request.param)
        finally:
            standin.configure(soda2="served", soda3_shape="rows")


@pytest.fixture(scope="module")
def warehouse(pg_server: str, soda_api: str) -> Iterator[str]:
    """A warehouse of its own for each API's runs (this module's audits count from one)."""
    with warehouse_of_its_own(pg_server) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def city_runs(
    dagbag: Any, standin: Any, warehouse: str, contracts: list[Any], soda_api: str
) -> dict[str, dict[str, Any]]:
    """Each city DAG run twice for DAY; what was served, and the state after each run."""
    runs: dict[str, dict[str, Any]] = {}
    standin.requests_log.clear()
    for contract in contracts:
        # Only DAY is served: records of other days would (rightly) come in through the
        # rerun's incremental capture. Window filtering is proven in test_extract.py.
        fresh_dataset(standin, contract)
        generated = seed_days(standin, contract, [DAY])
        dag = dagbag.dags[contract.dag_id]
        first = run_city_day(dag, contract, DAY)
        first_states = task_states(first)
        snapshot = table_snapshot(warehouse, contract.table)
        rejects = query(warehouse, "SELECT count(*) FROM citypulse.rejects")[0][0]
        second = run_city_day(dag, contract, DAY)
        runs[contract.dag_id] = {
            "contract": contract,
            "served": generated[DAY],
            "first": first,
            "first_states": first_states,
            "second": second,
            "snapshot": snapshot,
            "rejects_after_first": rejects,
        }
    return runs


def test_every_request_went_through_the_chosen_api(
    city_runs: dict[str, Any], standin: Any, soda_api: str
) -> None:
    answered = [r for r in standin.requests_log if r.status == 200]
    queries = [r for r in answered if not r.path.startswith("/api/views/")]
    assert queries
    if soda_api == "soda3":
        assert all(r.path.startswith("/api/v3/views/") for r in queries)
        assert all(r.method == "POST" and r.app_token_present for r in queries)
        assert not any(r.path.startswith("/resource/") for r in standin.requests_log)
    else:
        assert all(r.path.startswith("/resource/") for r in queries)


def table_snapshot(dsn: str, table: str) -> list[tuple[Any, ...]]:
    return query(dsn, f"SELECT * FROM citypulse.{table} ORDER BY 1")


def well_formed(served: Any) -> list[dict[str, Any]]:
    return [r for i, r in enumerate(served.records) if i not in served.malformed]


def audits(dsn: str, dag_id: str) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT extracted, loaded, rejected, inserted, updated, unchanged, window_start, "
        "window_end FROM citypulse.ingest_runs WHERE dag_id = %s ORDER BY id",
        (dag_id,),
    )


@pytest.mark.parametrize(
    "dag_id", ["chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"]
)
def test_day_lands_exactly_what_the_portal_served(
    city_runs: dict[str, Any], warehouse: str, dag_id: str
) -> None:
    run = city_runs[dag_id]
    contract, served = run["contract"], run["served"]
    assert str(run["first"].state) == "success", run["first_states"]
    assert run["first_states"] == dict.fromkeys(
        ("build_views", "extract", "housekeeping", "load", "reconcile", "validate"), "success"
    )
    assert served.malformed, "the generator should serve some malformed records"

    expected = well_formed(served)
    key = contract.key_column.wire_name
    rows = query(warehouse, f"SELECT {contract.key}::text FROM citypulse.{contract.table}")
    assert sorted(r[0] for r in rows) == sorted(str(r[key]) for r in expected)

    rejected = query(
        warehouse,
        "SELECT record_key, reason, record FROM citypulse.rejects WHERE dag_id = %s",
        (dag_id,),
    )
    malformed = [served.records[i] for i in served.malformed]
    assert sorted(r[0] for r in rejected) == sorted(str(r[key]) for r in malformed)
    assert all(reason for _, reason, _ in rejected)
    assert sorted(r[2][key] for r in rejected) == sorted(r[key] for r in malformed)

    first_audit = audits(warehouse, dag_id)[0]
    extracted, loaded, rejects, inserted, updated, unchanged, start, end = first_audit
    assert extracted == len(served.records) == loaded + rejects
    assert (loaded, rejects, inserted, updated, unchanged) == (
        len(expected),
        len(malformed),
        len(expected),
        0,
        0,
    )
    assert (start, end) == (
        datetime.combine(DAY, datetime.min.time()),
        datetime.combine(DAY + timedelta(days=1), datetime.min.time()),
    )


@pytest.mark.parametrize(
    "dag_id", ["chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"]
)
def test_rerun_of_the_same_day_changes_nothing(
    city_runs: dict[str, Any], warehouse: str, dag_id: str
) -> None:
    run = city_runs[dag_id]
    assert str(run["second"].state) == "success"
    assert table_snapshot(warehouse, run["contract"].table) == run["snapshot"]
    second = audits(warehouse, dag_id)[1]
    extracted, loaded, rejected, inserted, updated, unchanged = second[:6]
    assert (inserted, updated) == (0, 0)
    assert unchanged == loaded and extracted == loaded + rejected
    rejects = query(
        warehouse, "SELECT count(*) FROM citypulse.rejects WHERE dag_id = %s", (dag_id,)
    )[0][0]
    assert rejects == len(run["served"].malformed)


@pytest.mark.parametrize(
    "dag_id", ["chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"]
)
def test_columns_have_the_contract_types(
    city_runs: dict[str, Any], warehouse: str, dag_id: str
) -> None:
    contract = city_runs[dag_id]["contract"]
    actual = dict(
        query(
            warehouse,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'citypulse' AND table_name = %s",
            (contract.table,),
        )
    )
    for column in contract.columns:
        assert actual[column.name] == PG_TYPES[column.type], column.name
    assert actual["event_time_utc"] == "timestamp with time zone"
    assert actual["h3_r8"] == "text"


def test_typed_values_match_the_wire(city_runs: dict[str, Any], warehouse: str) -> None:
    run = city_runs["chicago_crime"]
    record = well_formed(run["served"])[0]
    (row,) = query(
        warehouse,
        "SELECT id, date, arrest, beat, latitude, ward, event_time_utc "
        "FROM citypulse.chicago_crime WHERE id = %s",
        (int(record["id"]),),
    )
    assert row[0] == int(record["id"])
    assert row[1] == datetime.fromisoformat(record["date"])
    assert row[2] is record["arrest"]
    assert row[3] == record["beat"]  # codes keep their leading zeros
    if "latitude" in record:
        assert row[4] == pytest.approx(float(record["latitude"]))
    assert row[5] == (int(record["ward"]) if "ward" in record else None)
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(record["date"]).replace(tzinfo=ZoneInfo("America/Chicago"))
    assert row[6] == local


def test_seattle_redacted_coordinates_load_as_null(
    city_runs: dict[str, Any], warehouse: str
) -> None:
    served = well_formed(city_runs["seattle_crime"]["served"])
    redacted = [r["offense_id"] for r in served if r.get("latitude") == "REDACTED"]
    assert redacted, "the generator should serve REDACTED coordinates"
    rows = query(
        warehouse,
        "SELECT latitude, longitude, h3_r8 FROM citypulse.seattle_crime WHERE offense_id = ANY(%s)",
        ([int(k) for k in redacted],),
    )
    assert len(rows) == len(redacted)
    assert set(rows) == {(None, None, None)}


def test_nyc_views(city_runs: dict[str, Any], warehouse: str) -> None:
    served = well_formed(city_runs["nyc_311"]["served"])
    expected = Counter((r.get("borough", "Unspecified"), r["complaint_type"]) for r in served)
    rows = query(
        warehouse,
        "SELECT borough, complaint_type, requests FROM citypulse.nyc_311_top_complaints_by_borough",
    )
    assert {(b, c): n for b, c, n in rows} == dict(expected)
    by_hour = query(
        warehouse, "SELECT sum(requests) FROM citypulse.nyc_311_requests_by_hour_weekday"
    )
    assert by_hour[0][0] == len(served)
    closed = sum(1 for r in served if r["status"] == "Closed")
    (totals,) = query(
        warehouse, "SELECT sum(closed), sum(open) FROM citypulse.nyc_311_open_vs_closed"
    )
    assert totals == (closed, len(served) - closed)


def test_seattle_views(city_runs: dict[str, Any], warehouse: str) -> None:
    served = well_formed(city_runs["seattle_crime"]["served"])
    by_precinct = Counter(r.get("precinct", "Unknown") for r in served)
    rows = query(
        warehouse,
        "SELECT precinct, sum(offenses) FROM citypulse.seattle_crime_offenses_by_precinct_7d "
        "GROUP BY precinct",
    )
    assert dict(rows) == dict(by_precinct)
    categories = Counter(r["offense_category"] for r in served)
    rows = query(
        warehouse,
        "SELECT offense_category, sum(offenses) FROM citypulse.seattle_crime_offenses_by_category "
        "GROUP BY 1",
    )
    assert dict(rows) == dict(categories)


def test_chicago_views(city_runs: dict[str, Any], warehouse: str) -> None:
    served = well_formed(city_runs["chicago_crime"]["served"])
    crimes = Counter(r["district"] for r in served)
    arrests = Counter(r["district"] for r in served if r["arrest"] is True)
    rows = query(
        warehouse,
        "SELECT district, crimes, arrests, arrest_rate FROM citypulse.chicago_crime_by_district",
    )
    for district, n, arrested, rate in rows:
        assert n == crimes[district] and arrested == arrests[district]
        assert float(rate) == pytest.approx(arrested / n, abs=1e-4)
    hours = Counter(int(r["date"][11:13]) for r in served)
    assert dict(
        query(warehouse, "SELECT hour, crimes FROM citypulse.chicago_crime_hourly_pattern")
    ) == dict(hours)


def test_montgomery_views(city_runs: dict[str, Any], warehouse: str) -> None:
    served = well_formed(city_runs["montgomery_traffic"]["served"])
    (row,) = query(
        warehouse, "SELECT day, stops, charges FROM citypulse.montgomery_traffic_stops_by_day"
    )
    assert row == (DAY, len({r["seq_id"] for r in served}), len(served))
    kinds = Counter(r["violation_type"] for r in served)
    rows = query(
        warehouse,
        "SELECT violation_type, charges FROM citypulse.montgomery_traffic_by_violation_type",
    )
    assert dict(rows) == dict(kinds)
    demographics = query(
        warehouse, "SELECT sum(stops) FROM citypulse.montgomery_traffic_driver_demographics"
    )
    assert demographics[0][0] == len({r["seq_id"] for r in served})


def test_unified_incidents_and_hex_daily_counts(city_runs: dict[str, Any], warehouse: str) -> None:
    per_city = dict(query(warehouse, "SELECT city, count(*) FROM citypulse.incidents GROUP BY 1"))
    for dag_id, run in city_runs.items():
        assert per_city[dag_id] == len(well_formed(run["served"]))
    (mismatched,) = query(
        warehouse,
        "SELECT count(*) FROM citypulse.incidents i JOIN citypulse.nyc_311 n "
        "ON i.city = 'nyc_311' AND i.source_key = n.unique_key::text "
        "WHERE i.event_time_utc <> (n.created_date AT TIME ZONE 'America/New_York') "
        "OR i.category <> n.complaint_type",
    )
    assert mismatched == (0,)
    hexes = dict(
        query(
            warehouse,
            "SELECT city, sum(incidents) FROM citypulse.hex_daily_counts "
            "WHERE local_day = %s GROUP BY 1",
            (DAY,),
        )
    )
    located = dict(
        query(
            warehouse,
            "SELECT city, count(*) FROM citypulse.incidents WHERE h3_r8 IS NOT NULL GROUP BY 1",
        )
    )
    assert hexes == located


def test_a_dataset_without_a_place_is_loaded_audited_and_viewed_but_not_mapped(
    airflow_db: str, standin: Any, fresh_warehouse: str, tmp_path: Path
) -> None:
    """Story: any Socrata dataset, even one without coordinates, is one contract away. A
    fifth contract (Chicago's copied without coordinates, bbox and `incidents:` mapping) runs
    its real daily DAG through `airflow dags test`: the day lands, its rejects are
    quarantined, its views build, and `incidents` leaves it out (no H3 cells)."""
    folder = tmp_path / "contracts"
    contract = contracts_with_unplaced(folder)
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [DAY], seed=11)[DAY]
    logical = logical_date_for(contract, DAY).isoformat()
    done = airflow_cli("dags", "test", contract.dag_id, logical, contracts=folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    expected = well_formed(served)
    assert served.malformed and expected
    key = contract.key_column.wire_name
    rows = query(
        fresh_warehouse,
        f"SELECT {contract.key}::text, h3_r8, h3_r7 FROM citypulse.{contract.table}",
    )
    assert sorted(r[0] for r in rows) == sorted(str(r[key]) for r in expected)
    assert {(r[1], r[2]) for r in rows} == {(None, None)}  # the standard columns, NULL
    (audit,) = audits(fresh_warehouse, contract.dag_id)
    assert audit[:3] == (len(served.records), len(expected), len(served.malformed))

    views = {
        r[0]
        for r in query(
            fresh_warehouse,
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'citypulse'",
        )
    }
    assert {f"{contract.table}_versions", f"{contract.table}_changes", "city_records"} <= views
    assert query(
        fresh_warehouse,
        "SELECT city, count(*) FROM citypulse.city_records GROUP BY city",
    ) == [(contract.dag_id, len(expected))]
    (incidents,) = query(fresh_warehouse, "SELECT pg_get_viewdef('citypulse.incidents'::regclass)")[
        0
    ]
    assert "chicago_crime" in incidents and contract.dag_id not in incidents
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.hex_daily_counts") == [(0,)]
    (health,) = query(
        fresh_warehouse,
        "SELECT city, rows_in_table, last_loaded FROM citypulse.pipeline_health",
    )
    assert health == (contract.dag_id, len(expected), len(expected))
    from citypulse.ui.health import city_health

    (city,) = city_health([contract])  # the health page reads city_records, not incidents
    assert city.rows_in_table == len(expected) and city.latest_run_state == "success"
    assert {d.day: (d.rows, d.rejects) for d in city.days}[DAY] == (
        len(expected),
        len(served.malformed),
    )
