"""User story: a data team points CityPulse's Airflow at its lineage tool (Marquez, DataHub,
...) with one setting, `AIRFLOW__OPENLINEAGE__TRANSPORT`, and every city task and the hotspot
retrain report what they read and wrote: the portal dataset with its schema and count, the
validation's verdicts and null counts, the warehouse table (named as the postgres provider
names it, so a `SQLExecuteQueryOperator` reading it joins up) with the rows loaded, the
rejects, the views, the model registry and forecast; a failed task reports its error; no
secret reaches the lineage tool.

Real parts: `airflow dags test` in a process of its own (the OpenLineage plugin reads its
configuration once per process), the SODA stand-in, PostgreSQL, and a recording HTTP server
standing in for the lineage tool behind the OpenLineage HTTP transport. Every event received
is built into the objects of the installed OpenLineage client's model, generated from the
specification, and CityPulse's own facet is validated against its JSON schema in
docs/openlineage/ (tests/openlineage_events.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import query
from helpers import by_id, fresh_dataset, logical_date_for, seed_days
from openlineage_events import validate_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITY = "nyc_311"
DAY = date.today() - timedelta(days=4)
CITY_TASKS = ("extract", "validate", "load", "reconcile", "build_views", "housekeeping")
TOKEN = "tok-lineage-0b5e55ed"
PASSWORD = "pw-lineage-5ec12e7"
WEBHOOK_SECRET = "hook-lineage-7a1f"
# Eight weeks of history: 28 warm-up days + 14 training days + 2 folds of 7 test days.
RETRAIN_LAST_DAY = date(2025, 11, 9)
RETRAIN_RUN = datetime(2025, 11, 10, 12, tzinfo=UTC)
RETRAIN_CONF = {"training_days": 14, "test_days": 7, "folds": 2, "cities": [CITY]}
EVENT_TIMEOUT_S = 60


class LineageRecorder(ThreadingHTTPServer):
    """A lineage tool's HTTP endpoint: records every request body by path, answers 200."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace")
                with recorder.lock:
                    recorder.bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for body in self.bodies.get("/api/v1/lineage", [])]

    def all_bodies(self) -> list[str]:
        with self.lock:
            return [body for bodies in self.bodies.values() for body in bodies]

    def wait_for(self, jobs: dict[str, str]) -> list[dict[str, Any]]:
        """The events once every job in `jobs` has sent an event of its event type
        (COMPLETE/FAIL); fails after EVENT_TIMEOUT_S."""
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            events = self.events()
            seen = {(e["job"]["name"], e["eventType"]) for e in events if "run" in e}
            missing = {job: kind for job, kind in jobs.items() if (job, kind) not in seen}
            if not missing:
                return events
            if time.monotonic() > deadline:
                pytest.fail(f"no {missing} events after {EVENT_TIMEOUT_S} s; got {sorted(seen)}")
            time.sleep(0.1)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[LineageRecorder]:
    server = LineageRecorder()
    yield server
    server.close()


@pytest.fixture(scope="module")
def lineage_env(recorder: LineageRecorder, module_warehouse: str, standin: Any) -> dict[str, str]:
    """The environment of a deployment with lineage on: the HTTP transport pointed at the
    recorder; an app token, a warehouse password and an alert webhook, all secret."""
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(module_warehouse)
    warehouse = {
        "conn_type": "postgres",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(parts.get("port", 5432)),
        "login": parts.get("user", "postgres"),
        # The test server trusts local connections: the password is sent and ignored.
        "password": PASSWORD,
        "schema": parts["dbname"],
    }
    return {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "http", "url": recorder.url, "endpoint": "api/v1/lineage"}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "citypulse-test",
        "AIRFLOW_CONN_WAREHOUSE": json.dumps(warehouse),
        "SOCRATA_APP_TOKEN": TOKEN,
        "AIRFLOW_CONN_CITYPULSE_ALERTS": json.dumps(
            {"conn_type": "http", "host": f"{recorder.url}/hooks/{WEBHOOK_SECRET}"}
        ),
    }


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def runs(
    recorder: LineageRecorder,
    lineage_env: dict[str, str],
    module_warehouse: str,
    standin: Any,
    airflow_db: str,
    contracts: list[Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """A day of nyc_311, a SQLExecuteQueryOperator reading its table, and hotspot_retrain,
    each with lineage on; the events of each."""
    from citypulse_dev.sample_history import load_history

    contract = by_id(contracts, CITY)
    fresh_dataset(standin, contract)
    served = seed_days(standin, contract, [DAY], seed=11)[DAY]
    city = airflow(lineage_env, "dags", "test", CITY, logical_date_for(contract, DAY).isoformat())
    assert city.returncode == 0, city.stdout[-3000:] + city.stderr[-3000:]
    city_events = recorder.wait_for({f"{CITY}.{task}": "COMPLETE" for task in CITY_TASKS})

    other_team = tmp_path_factory.mktemp("other_team_dags")
    (other_team / "lineage_sql_reader.py").write_text(SQL_READER_DAG, encoding="utf-8")
    reader = airflow(
        {**lineage_env, "AIRFLOW__CORE__DAGS_FOLDER": str(other_team)},
        "dags",
        "test",
        "lineage_sql_reader",
    )
    assert reader.returncode == 0, reader.stdout[-3000:] + reader.stderr[-3000:]
    reader_events = recorder.wait_for({"lineage_sql_reader.count_rows": "COMPLETE"})

    # Ten weeks: 34 warm-up days (28 + lag 0 + 6), 2 folds of 7 test days, 14 training days.
    first = RETRAIN_LAST_DAY - timedelta(days=7 * 10 - 1)
    load_history([contract], first, RETRAIN_LAST_DAY, dsn=module_warehouse, records_per_day=200)
    retrain = airflow(
        lineage_env,
        "dags",
        "test",
        "hotspot_retrain",
        RETRAIN_RUN.isoformat(),
        "--conf",
        json.dumps(RETRAIN_CONF),
    )
    assert retrain.returncode == 0, retrain.stdout[-3000:] + retrain.stderr[-3000:]
    retrain_events = recorder.wait_for(
        {f"hotspot_retrain.city.{t}": "COMPLETE" for t in ("check_freshness", "train", "predict")}
    )
    return {
        "served": served,
        "city": city_events,
        "reader": reader_events,
        "retrain": retrain_events,
        "database": module_warehouse,
    }


# A DAG file of another team: one SQLExecuteQueryOperator reading CityPulse's table, run with
# the same lineage settings.
SQL_READER_DAG = f"""
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

with DAG("lineage_sql_reader", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
    SQLExecuteQueryOperator(
        task_id="count_rows",
        conn_id="warehouse",
        sql="SELECT complaint_type, count(*) FROM citypulse.{CITY} GROUP BY complaint_type",
    )
"""


def final_event(events: list[dict[str, Any]], job: str, kind: str = "COMPLETE") -> Any:
    found = [e for e in events if e["job"]["name"] == job and e["eventType"] == kind]
    assert found, f"no {kind} event of {job}"
    return found[-1]


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def warehouse_namespace(dsn: str) -> tuple[str, str]:
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(dsn)
    return f"postgres://{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}", parts["dbname"]


def test_every_event_is_valid_openlineage(runs: dict[str, Any]) -> None:
    used = validate_events([*runs["city"], *runs["reader"], *runs["retrain"]])
    assert {
        "SchemaDatasetFacet",
        "InputStatisticsInputDatasetFacet",
        "DataQualityAssertionsDatasetFacet",
        "DataQualityMetricsInputDatasetFacet",
        "OutputStatisticsOutputDatasetFacet",
        "CityPulseLoadOutputDatasetFacet",
    } <= used


def test_extract_reads_the_portal_dataset_with_its_schema_and_count(
    runs: dict[str, Any], contracts: list[Any]
) -> None:
    contract = by_id(contracts, CITY)
    event = final_event(runs["city"], f"{CITY}.extract")
    assert names(event["inputs"]) == [("https://data.cityofnewyork.us", "erm2-nwe9")]
    (portal,) = event["inputs"]
    fields = [(f["name"], f["type"]) for f in portal["facets"]["schema"]["fields"]]
    assert fields == [(c.wire_name, c.type) for c in contract.columns]
    (audit_rows,) = query(
        runs["database"],
        "SELECT portal_rows FROM citypulse.ingest_runs WHERE dag_id = %s "
        "AND window_start::date = %s",
        (CITY, DAY),
    )
    assert portal["inputFacets"]["inputStatistics"]["rowCount"] == audit_rows[0]
    assert audit_rows[0] == len(runs["served"].records)


def test_validate_reports_every_verdict_and_the_null_counts(
    runs: dict[str, Any], contracts: list[Any]
) -> None:
    contract = by_id(contracts, CITY)
    event = final_event(runs["city"], f"{CITY}.validate")
    (portal,) = event["inputs"]
    assert (portal["namespace"], portal["name"]) == ("https://data.cityofnewyork.us", "erm2-nwe9")
    (stored,) = query(
        runs["database"],
        "SELECT report FROM citypulse.validation_reports WHERE dag_id = %s",
        (CITY,),
    )
    report = stored[0]
    assertions = portal["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a.get("column"), a["success"], a["actual"]) for a in assertions] == [
        (e["expectation"], e["column"], e["success"], str(e["unexpected"]))
        for e in report["expectations"]
    ]
    assert assertions
    metrics = portal["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == report["extracted"] == len(runs["served"].records)
    nulls = {
        e["column"]: e["unexpected"]
        for e in report["expectations"]
        if e["expectation"] == "expect_column_values_to_not_be_null"
    }
    required = [c.name for c in contract.columns if c.required]
    assert required and set(metrics["columnMetrics"]) == set(required)
    assert {c: m["nullCount"] for c, m in metrics["columnMetrics"].items()} == {
        c: nulls[c] for c in required
    }


def test_load_writes_the_table_as_the_postgres_provider_names_it(
    runs: dict[str, Any], contracts: list[Any]
) -> None:
    contract = by_id(contracts, CITY)
    namespace, database = warehouse_namespace(runs["database"])
    event = final_event(runs["city"], f"{CITY}.load")
    assert names(event["outputs"]) == [
        (namespace, f"{database}.citypulse.{CITY}"),
        (namespace, f"{database}.citypulse.rejects"),
    ]
    table, rejects = event["outputs"]
    columns = [f["name"] for f in table["facets"]["schema"]["fields"]]
    assert columns[: len(contract.columns)] == [c.name for c in contract.columns]
    (audit,) = query(
        runs["database"],
        "SELECT id, inserted, updated, unchanged, rejected FROM citypulse.ingest_runs "
        "WHERE dag_id = %s AND window_start::date = %s",
        (CITY, DAY),
    )
    audit_id, inserted, updated, unchanged, rejected = audit
    assert inserted > 0 and rejected > 0
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == inserted + updated
    load = {k: v for k, v in table["outputFacets"]["citypulseLoad"].items() if k[0] != "_"}
    assert load == {
        "inserted": inserted,
        "updated": updated,
        "unchanged": unchanged,
        "rejected": rejected,
        "auditId": audit_id,
    }
    assert rejects["outputFacets"]["outputStatistics"]["rowCount"] == rejected


def test_build_views_reads_the_tables_and_writes_the_views(
    runs: dict[str, Any], contracts: list[Any]
) -> None:
    namespace, database = warehouse_namespace(runs["database"])
    event = final_event(runs["city"], f"{CITY}.build_views")
    inputs, outputs = names(event["inputs"]), names(event["outputs"])
    for contract in contracts:
        assert (namespace, f"{database}.citypulse.{contract.table}") in inputs
    views = {name.rsplit(".", 1)[1] for ns, name in outputs if ns == namespace}
    assert {
        "nyc_311_top_complaints_by_borough",
        "city_records",
        "incidents",
        "hex_daily_counts",
        "pipeline_health",
    } <= views
    (built,) = query(
        runs["database"],
        "SELECT count(*) FROM information_schema.views WHERE table_schema = 'citypulse' "
        "AND table_name = ANY(%s)",
        (sorted(views),),
    )
    assert built[0] == len(views)


def test_a_sql_operator_reading_the_table_names_it_as_citypulse_does(
    runs: dict[str, Any],
) -> None:
    loaded = final_event(runs["city"], f"{CITY}.load")["outputs"][0]
    read = final_event(runs["reader"], "lineage_sql_reader.count_rows")
    assert (loaded["namespace"], loaded["name"]) in names(read["inputs"])


def test_hotspot_retrain_reads_the_city_tables_and_writes_registry_and_forecast(
    runs: dict[str, Any],
) -> None:
    namespace, database = warehouse_namespace(runs["database"])

    def relation(table: str) -> tuple[str, str]:
        return (namespace, f"{database}.citypulse.{table}")

    events = runs["retrain"]
    fresh = final_event(events, "hotspot_retrain.city.check_freshness")
    assert relation(CITY) in names(fresh["inputs"])
    train = final_event(events, "hotspot_retrain.city.train")
    assert relation(CITY) in names(train["inputs"])
    outputs = {name: d for d, name in zip(train["outputs"], names(train["outputs"]), strict=True)}
    assert set(outputs) == {
        relation("model_runs"),
        relation("retrain_gates"),
        relation("hotspot_publication"),
    }
    (models,) = query(
        runs["database"],
        "SELECT count(*) FROM citypulse.model_runs WHERE city = %s",
        (CITY,),
    )
    registered = outputs[relation("model_runs")]["outputFacets"]["outputStatistics"]["rowCount"]
    assert registered == models[0] > 0
    predict = final_event(events, "hotspot_retrain.city.predict")
    assert names(predict["outputs"]) == [relation("hotspot_predictions")]
    (forecast,) = query(
        runs["database"],
        "SELECT count(*) FROM citypulse.hotspot_predictions WHERE city = %s",
        (CITY,),
    )
    written = predict["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"]
    assert written == forecast[0] > 0


def test_without_a_transport_no_listener_is_registered(airflow_db: str) -> None:
    """Off unless configured: in a task process without any OpenLineage setting the provider's
    plugin registers no listener, so no task calls the facet methods and nothing is sent;
    with a transport it registers its listener."""
    off = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    on = {**off, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "console"})}
    probe = (
        "from airflow.sdk.listener import get_listener_manager\n"
        "from airflow.providers.openlineage.plugins.openlineage import OpenLineageProviderPlugin\n"
        "print(len(OpenLineageProviderPlugin.listeners), get_listener_manager().has_listeners)\n"
    )
    found = {}
    for name, env in (("off", off), ("on", on)):
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        found[name] = done.stdout.split()[-2:]
    assert found == {"off": ["0", "False"], "on": ["1", "True"]}


def test_a_failed_task_sends_fail_with_its_error_and_no_secret_is_sent(
    runs: dict[str, Any],
    recorder: LineageRecorder,
    lineage_env: dict[str, str],
    standin: Any,
    contracts: list[Any],
) -> None:
    """A portal that refuses the query and repeats the app token in its error: extract fails
    at once, its FAIL event carries the error; the token, the warehouse password and the
    webhook URL are in no lineage event (the webhook got its alert)."""
    from citypulse_dev.standin.server import Fault

    contract = by_id(contracts, CITY)
    standin.add_fault(Fault(status=400, message=f"query refused for app token {TOKEN}", times=None))
    try:
        failed_day = DAY - timedelta(days=1)
        done = airflow(
            lineage_env,
            "dags",
            "test",
            CITY,
            logical_date_for(contract, failed_day).isoformat(),
        )
    finally:
        standin.clear_faults()
    assert done.returncode != 0
    events = recorder.wait_for({f"{CITY}.extract": "FAIL"})
    validate_events(events)
    failed = final_event(events, f"{CITY}.extract", "FAIL")
    error = failed["run"]["facets"]["errorMessage"]
    assert "query refused" in error["message"]
    assert names(failed["inputs"]) == [("https://data.cityofnewyork.us", "erm2-nwe9")]
    assert any(path.startswith("/hooks/") for path in recorder.bodies), "no alert was posted"
    lineage = [
        body
        for path, bodies in recorder.bodies.items()
        if path == "/api/v1/lineage"
        for body in bodies
    ]
    assert lineage
    for secret in (TOKEN, PASSWORD, WEBHOOK_SECRET):
        assert not [body for body in lineage if secret in body], secret
