"""Schema drift caught on every run (issue 20 point 4): the portal's columns (its view
metadata) against the contract's, before any row is read.

The rules (`citypulse.pipeline.drift`) on view metadata as the stand-in serves it; then user
stories through `dag.test()`, the stand-in over HTTP and a real PostgreSQL: a column dropped,
added and retyped at the portal is recorded once in `schema_changes`, alerted, and shown on the
city's health page; a required column dropped fails the run at once and loads nothing; an
unchanged portal records nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from citypulse.pipeline.drift import SchemaChange, schema_changes
from citypulse.portal.metadata import ViewMetadata
from citypulse_dev.standin import views
from citypulse_dev.standin.catalog import wire_types
from conftest import query
from helpers import by_id, fresh_dataset, run_city_day, task_tries


def portal_view(
    contract: Any, types: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> Any:
    """The view metadata the stand-in serves for the contract's dataset: its declared wire
    types, overridden by `types` (SoQL types, as the stand-in is told them), with `extra`
    fields as text columns."""
    declared = {**wire_types(contract), **dict.fromkeys(extra, "text"), **(types or {})}
    raw = views.view_json(
        contract.dataset_id,
        name=contract.title,
        columns=list(declared),
        types=declared,
        records=[],
        key=None,
        created_at=0,
        rows_updated_at=0,
        view_last_modified=0,
    )
    return raw


# --- the rules ------------------------------------------------------------------------------


def test_a_portal_serving_the_contracts_columns_is_no_drift(contracts: list[Any]) -> None:
    for contract in contracts:
        ignored = tuple(contract.ignore_fields)
        assert (
            schema_changes(contract, ViewMetadata.from_json(portal_view(contract, extra=ignored)))
            == []
        )


def test_the_live_portals_own_types_are_no_drift(contracts: list[Any]) -> None:
    """Text carries any value (Seattle's latitude, NYC's unique_key, Montgomery's Yes/No
    flags are text on the live portals); numbers may be kept as text codes; `:@computed_region`
    columns and system fields are never drift."""
    seattle, nyc, montgomery, chicago = (
        by_id(contracts, name)
        for name in ("seattle_crime", "nyc_311", "montgomery_traffic", "chicago_crime")
    )
    cases = [
        (seattle, {"latitude": "text", "longitude": "text", "offense_id": "text"}),
        (nyc, {"unique_key": "text", "created_date": "text"}),
        (montgomery, {"accident": "text", "fatal": "text"}),
        (chicago, {"beat": "number", "location": "location"}),
    ]
    for contract, types in cases:
        raw = portal_view(contract, types, extra=tuple(contract.ignore_fields))
        raw["columns"].append(
            {"fieldName": ":@computed_region_x", "dataTypeName": "number", "id": 1, "position": 99}
        )
        assert schema_changes(contract, ViewMetadata.from_json(raw)) == [], contract.dag_id


def test_every_socrata_name_of_a_type_is_read_as_scaffolding_reads_it(
    contracts: list[Any],
) -> None:
    """Portals name a timestamp `calendar_date`, `floating_timestamp`, `fixed_timestamp` or
    `date`, and a number `number`, `double`, `money` or `percent`: one table (the metadata's)
    says which family each is, for drift as for `contract init`."""
    chicago = by_id(contracts, "chicago_crime")
    for stamp in ("calendar_date", "floating_timestamp", "fixed_timestamp", "date"):
        for number in ("number", "double", "money", "percent"):
            raw = portal_view(chicago, extra=("location",))
            raw["columns"] = views.drifted_columns(
                raw, retype={"date": stamp, "updated_on": stamp, "x_coordinate": number}
            )
            assert schema_changes(chicago, ViewMetadata.from_json(raw)) == [], (stamp, number)


def test_dropped_added_and_retyped_columns_are_each_a_change(contracts: list[Any]) -> None:
    chicago = by_id(contracts, "chicago_crime")
    raw = portal_view(chicago, extra=("zone_code", "location"))
    raw["columns"] = views.drifted_columns(
        raw, drop=["iucr", "primary_type"], retype={"arrest": "number", "date": "number"}
    )
    assert schema_changes(chicago, ViewMetadata.from_json(raw)) == [
        SchemaChange("retyped", "date", "timestamp", "number", required=True),
        SchemaChange("removed", "iucr", "text", None),
        SchemaChange("removed", "primary_type", "text", None, required=True),
        SchemaChange("retyped", "arrest", "boolean", "number"),
        SchemaChange("added", "zone_code", None, "text"),
    ]
    fatal = [c.column for c in schema_changes(chicago, ViewMetadata.from_json(raw)) if c.fatal]
    assert fatal == ["primary_type"]  # only a required column gone; a retype is validation's


def test_a_point_feeds_only_the_coordinates(contracts: list[Any]) -> None:
    chicago = by_id(contracts, "chicago_crime")
    raw = portal_view(chicago, extra=("location",))
    raw["columns"] = views.drifted_columns(raw, retype={"latitude": "point", "beat": "point"})
    assert schema_changes(chicago, ViewMetadata.from_json(raw)) == [
        SchemaChange("retyped", "beat", "text", "point")
    ]


def test_drifted_columns_names_a_field_the_view_lacks(contracts: list[Any]) -> None:
    raw = portal_view(by_id(contracts, "chicago_crime"))
    with pytest.raises(KeyError, match="no_such"):
        views.drifted_columns(raw, drop=["no_such"])


# --- user stories through dag.test() ---------------------------------------------------------


def local_yesterday(contract: Any) -> date:
    return datetime.now(ZoneInfo(contract.timezone)).date() - timedelta(days=1)


def serve_drifted(standin: Any, contract: Any, day: date, drop: str, add: str) -> list[Any]:
    """The day's records as a portal that dropped `drop` and added `add` sends them."""
    from citypulse_dev.generator import generate_day

    records = [
        {**{k: v for k, v in r.items() if k != drop}, add: "Z-1"}
        for r in generate_day(contract, day, seed=23, records=30).records
    ]
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)
    return records


def drift_rows(dsn: str) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT dag_id, run_id, change, column_name, before, after, required, "
        "resolved_run_id FROM citypulse.schema_changes ORDER BY id",
    )


def alert_lines(capfd: Any, caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    caplog.clear()
    lines = [
        line.split("CITYPULSE_ALERT ", 1)[1]
        for line in text.splitlines()
        if "CITYPULSE_ALERT {" in line
    ]
    return list({line: json.loads(line) for line in lines}.values())  # caplog repeats the logs


@pytest.fixture
def chicago(standin: Any, contracts: list[Any]) -> Iterator[Any]:
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    yield contract
    fresh_dataset(standin, contract)  # the view's lie goes with the dataset


def test_a_dropped_added_and_retyped_column_is_recorded_once_alerted_and_shown_as_drift(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    chicago: Any,
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Story: Chicago's publisher drops `iucr`, adds `zone_code` and turns `arrest` into a
    number. The next run records the three changes and alerts them once (a warning), loads
    the day with `iucr` NULL and `zone_code` ignored; the city's health page shows the drift.
    The next run sees the same drift and adds nothing; once the portal is put right, a run
    resolves them."""
    from helpers import ui_get

    dag = dagbag.dags[chicago.dag_id]
    yesterday = local_yesterday(chicago)
    first_day = yesterday - timedelta(days=1)
    serve_drifted(standin, chicago, first_day, drop="iucr", add="zone_code")
    served = serve_drifted(standin, chicago, yesterday, drop="iucr", add="zone_code")
    columns = views.drifted_columns(
        standin.view(chicago.dataset_id), drop=["iucr"], retype={"arrest": "number"}
    )
    standin.lie_in_view(chicago.dataset_id, {"columns": columns})

    with caplog.at_level(logging.WARNING):
        first = run_city_day(dag, chicago, first_day)
    assert {state for state, _ in task_tries(first).values()} == {"success"}
    expected = [
        ("removed", "iucr", "text", None, False),
        ("retyped", "arrest", "boolean", "number", False),
        ("added", "zone_code", None, "text", False),
    ]
    rows = drift_rows(fresh_warehouse)
    assert [row[2:7] for row in rows] == expected
    assert {(row[0], row[1], row[7]) for row in rows} == {(chicago.dag_id, first.run_id, None)}
    (alert,) = alert_lines(capfd, caplog)
    assert (alert["level"], alert["task_id"], alert["run_id"]) == (
        "warning",
        "extract",
        first.run_id,
    )
    for words in ("`iucr` removed", "`zone_code` added", "`arrest` retyped", "chicago_crime.yaml"):
        assert words in alert["reason"]

    with caplog.at_level(logging.WARNING):
        second = run_city_day(dag, chicago, yesterday)
    assert {state for state, _ in task_tries(second).values()} == {"success"}
    assert drift_rows(fresh_warehouse) == rows  # the same drift: nothing new, nothing resolved
    assert alert_lines(capfd, caplog) == []  # alerted once
    loaded = query(
        fresh_warehouse,
        "SELECT count(*), count(iucr) FROM citypulse.chicago_crime WHERE date >= %s AND date < %s",
        (yesterday, yesterday + timedelta(days=1)),
    )
    assert loaded == [(len(served), 0)]  # loaded, the dropped optional column as NULL

    # The health page's API, in process (Airflow's login is test_ui's): the city drifts.
    (response,) = ui_get("/api/health")
    assert response.status_code == 200
    city = next(c for c in response.json() if c["dag_id"] == chicago.dag_id)
    assert city["status"] == "drifting", city["reason"]
    assert "the portal's columns differ from the contract" in city["reason"]
    assert "iucr removed" in city["reason"] and "arrest retyped to number" in city["reason"]
    shown = [(d["change"], d["column"], d["before"], d["after"]) for d in city["schema_drift"]]
    assert shown == [row[:4] for row in expected]
    assert {d["run_id"] for d in city["schema_drift"]} == {first.run_id}

    # The publisher puts the columns back: the next run resolves the open changes.
    standin.lie_in_view(chicago.dataset_id, {})
    reload = dag.test(run_conf={"start_date": yesterday.isoformat()})
    assert str(reload.state) == "success"
    resolved = drift_rows(fresh_warehouse)
    assert [row[2:7] for row in resolved] == expected  # no new row
    # `zone_code` is still in the records, so in the view: still open.
    assert [(row[3], row[7]) for row in resolved] == [
        ("iucr", reload.run_id),
        ("arrest", reload.run_id),
        ("zone_code", None),
    ]


def test_a_dropped_required_column_fails_extract_at_once_and_loads_nothing(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    contracts: list[Any],
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Story: NYC drops `complaint_type`. The run fails in extract on its first try, naming
    the column and the contract file, before any row is read; nothing is loaded."""
    nyc = by_id(contracts, "nyc_311")
    fresh_dataset(standin, nyc)
    day = local_yesterday(nyc)
    serve_drifted(standin, nyc, day, drop="complaint_type", add="complaint_kind")
    columns = views.drifted_columns(standin.view(nyc.dataset_id), drop=["complaint_type"])
    standin.lie_in_view(nyc.dataset_id, {"columns": columns})
    seen = len(standin.requests_log)
    try:
        run = run_city_day(dagbag.dags[nyc.dag_id], nyc, day)
    finally:
        fresh_dataset(standin, nyc)
    tries = task_tries(run)
    assert str(run.state) == "failed"
    assert tries["extract"] == ("failed", 1)  # terminal: no retry
    assert tries["load"][0] == "upstream_failed"
    paths = {r.path for r in standin.requests_log[seen:] if r.dataset_id == nyc.dataset_id}
    assert paths == {f"/api/views/{nyc.dataset_id}.json"}  # no row was read
    alerts = alert_lines(capfd, caplog)
    (failure,) = [a for a in alerts if "level" not in a and "`complaint_type`" in a["reason"]]
    assert (failure["task_id"], failure["try_number"]) == ("extract", "1")
    assert "include/contracts/nyc_311.yaml" in failure["reason"]
    assert "no row was read and nothing was loaded" in failure["reason"]
    assert query(fresh_warehouse, "SELECT to_regclass('citypulse.nyc_311')") == [(None,)]
    assert [row[2:7] for row in drift_rows(fresh_warehouse)] == [
        ("removed", "complaint_type", "text", None, True),
        ("added", "complaint_kind", None, "text", False),
    ]


def test_an_unchanged_portal_records_nothing(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Montgomery's contract reads system fields (`:id`, `:updated_at`) and ignores
    `geolocation`: none of it is drift."""
    from helpers import seed_days

    montgomery = by_id(contracts, "montgomery_traffic")
    fresh_dataset(standin, montgomery)
    day = local_yesterday(montgomery)
    seed_days(standin, montgomery, [day])
    run = run_city_day(dagbag.dags[montgomery.dag_id], montgomery, day)
    assert {state for state, _ in task_tries(run).values()} == {"success"}
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.schema_changes") == [(0,)]
