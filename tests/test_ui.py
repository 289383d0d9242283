"""User story: an operator opens the Airflow UI and, through its own navigation, finds each
city's status in words with its last 60 days, every city run's validation report as a tab of
the run, the published hotspot forecast drawn as hexagons, and the source projects' charts.

Real parts: PostgreSQL, the Airflow metadata DB, `dag.test()` runs of a city DAG (one that
loads, one whose validation fails) and of `hotspot_retrain`, the real `airflow api-server`
with the plugin, and Debian's Chromium driven by Playwright, logging in as a person does.
The JSON API is checked through the same server (and refuses anyone not logged in).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, query
from helpers import by_id, free_port, fresh_dataset, run_city_day, seed_days

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("CITYPULSE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("CITYPULSE_SCREENSHOTS_DIR", ROOT / ".citypulse" / "artifacts" / "ui")
)
PASSWORD = "citypulse-ui-test"
WEEKS = 12
RECORDS_PER_DAY = 120
FRESH, FAILING, LATE, DRIFTING = "chicago_crime", "nyc_311", "montgomery_traffic", "seattle_crime"
LATE_BY_DAYS = 4
# Chicago (FRESH) is 7 days late by contract: its data as it stood ends 8 days before the
# run, then 2 folds of 7 test days, a 7-day gap before each, 14 training days and a warm-up of
# 28 + 7 + 6 days (a horizon-7 row reads features 6 days older) = 12 weeks of history.
RETRAIN_CONF = {"training_days": 14, "test_days": 7, "folds": 2}


def yesterday(contract: Any) -> date:
    return datetime.now(ZoneInfo(contract.timezone)).date() - timedelta(days=1)


def last_due_day(contract: Any) -> date:
    """The last local day the city's loads should reach by now: yesterday once the daily
    run's deadline has passed, else the day before (`ui.status`'s rule)."""
    from citypulse.ui.status import expected_through

    due = expected_through(contract.timezone, contract.deadline_hours, datetime.now(UTC))
    return due.date() - timedelta(days=1)


@dataclass
class Seeded:
    warehouse: str
    passed_run: Any  # chicago_crime's run for yesterday: validated and loaded
    failed_run: Any  # nyc_311's run for yesterday: validation failed, nothing loaded
    low_day: date  # seattle_crime's day published incomplete
    late_through: date  # montgomery_traffic's last loaded day


@pytest.fixture(scope="module")
def seeded(
    module_warehouse: str, airflow_db: str, standin: Any, contracts: list[Any], dagbag: Any
) -> Seeded:
    """Twelve weeks of history per city (one city stops 4 days early, one has an incomplete
    day), a city run that loads, one whose validation fails, and a retrain that publishes."""
    from citypulse.pipeline.views import build_views
    from citypulse.warehouse.connection import connect
    from citypulse_dev.sample_history import load_history

    late_through = last_due_day(by_id(contracts, LATE)) - timedelta(days=LATE_BY_DAYS)
    for contract in contracts:
        last = late_through if contract.dag_id == LATE else yesterday(contract)
        load_history(
            [contract], last - timedelta(weeks=WEEKS) + timedelta(days=1), last,
            dsn=module_warehouse, records_per_day=RECORDS_PER_DAY,
        )  # fmt: skip
    drifting = by_id(contracts, DRIFTING)
    low_day = yesterday(drifting) - timedelta(days=2)
    # The portal published a fraction of that local day (an outage): most of its rows are
    # missing. `event_time` is the local wall time; the contract's column may hold an offset.
    query(
        module_warehouse,
        f"DELETE FROM citypulse.{drifting.table} WHERE event_time::date = %s "
        f"AND {drifting.key} IN (SELECT {drifting.key} FROM citypulse.{drifting.table} "
        f"WHERE event_time::date = %s ORDER BY {drifting.key} OFFSET 20)",
        (low_day, low_day),
    )

    # Seattle's publisher then drops `beat` and retypes `offense_date`: the extract's schema
    # check (as every run does it, against the stand-in's view metadata) records the drift.
    from citypulse.pipeline.drift_log import check_schema
    from citypulse.portal.client import SocrataClient
    from citypulse_dev.standin.views import drifted_columns

    fresh_dataset(standin, drifting)
    drifted = drifted_columns(
        standin.view(drifting.dataset_id), drop=["beat"], retype={"offense_date": "number"}
    )
    standin.lie_in_view(drifting.dataset_id, {"columns": drifted})
    with SocrataClient(drifting) as client:
        check_schema(drifting, "scheduled__schema_drift", client.metadata(), task_id="extract")
    fresh_dataset(standin, drifting)

    chicago = by_id(contracts, FRESH)
    fresh_dataset(standin, chicago)
    seed_days(standin, chicago, [yesterday(chicago)])
    passed = run_city_day(dagbag.dags[FRESH], chicago, yesterday(chicago))

    nyc = by_id(contracts, FAILING)
    fresh_dataset(standin, nyc)
    served = seed_days(standin, nyc, [yesterday(nyc)])[yesterday(nyc)].records
    broken = [
        {k: v for k, v in r.items() if k != "complaint_type"} if i % 3 == 0 else r
        for i, r in enumerate(served)
    ]
    standin.clear(nyc.dataset_id)
    standin.put(nyc.dataset_id, broken, key=nyc.key_column.wire_name)
    failed = run_city_day(dagbag.dags[FAILING], nyc, yesterday(nyc))

    # A backfill of an old day finishes last (as in `make demo`): the city is still fresh.
    old_day = yesterday(chicago) - timedelta(days=30)
    load_history([chicago], old_day, old_day, dsn=module_warehouse, records_per_day=RECORDS_PER_DAY)
    with connect(module_warehouse) as conn, conn.cursor() as cur:
        build_views(cur, chicago, contracts)  # load_history built `incidents` of chicago alone

    dagbag.dags["hotspot_retrain"].test(logical_date=datetime.now(UTC), run_conf=RETRAIN_CONF)
    return Seeded(module_warehouse, passed, failed, low_day, late_through)


class ApiServer:
    """`airflow api-server` with the plugin, on the tests' metadata DB and warehouse."""

    def __init__(self, home: Path, warehouse: str) -> None:
        from citypulse.warehouse.connection import airflow_conn_json

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": PASSWORD}))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": "citypulse-ui-test-jwt-secret",
            "AIRFLOW__API__SECRET_KEY": "citypulse-ui-test-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW_CONN_WAREHOUSE": airflow_conn_json(warehouse),
            "PYTHONPATH": str(ROOT / "include"),
        }
        self.log = (home / "api-server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (home / "api-server.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=3).close()
                return
            except OSError:
                time.sleep(1)
        raise AssertionError("the api-server did not come up in 180 s")

    def token(self) -> str:
        request = urllib.request.Request(
            f"{self.url}/auth/token",
            data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["access_token"])

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
                kind = response.headers.get("Content-Type", "")
                return response.status, json.loads(body) if "json" in kind else body.decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="module")
def server(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("api-server"), seeded.warehouse)
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def token(server: ApiServer) -> str:
    return server.token()


# --- The JSON API, through the real api-server ----------------------------------------------


def test_every_page_and_its_data_need_a_login(server: ApiServer) -> None:
    for path in ("/citypulse/api/health", "/citypulse/health", "/citypulse/static/citypulse.js"):
        status, _ = server.get(path)
        assert status in (401, 403), path


def test_health_says_each_citys_status_in_words(
    server: ApiServer, token: str, seeded: Seeded, contracts: list[Any]
) -> None:
    status, cities = server.get("/citypulse/api/health", token)
    assert status == 200
    by_city = {c["dag_id"]: c for c in cities}
    assert {c: by_city[c]["status"] for c in by_city} == {
        FRESH: "fresh",
        FAILING: "failing",
        LATE: "late",
        DRIFTING: "drifting",
    }
    assert by_city[FAILING]["reason"].startswith(
        f"the latest run ({by_city[FAILING]['latest_run_id']}) failed in validate"
    )
    # Between local midnight and the daily run's deadline yesterday is not due yet.
    behind = (last_due_day(by_id(contracts, LATE)) - seeded.late_through).days
    assert behind >= LATE_BY_DAYS
    assert f"{behind} days behind" in by_city[LATE]["reason"]
    assert "far below their weekday's median" in by_city[DRIFTING]["reason"]
    assert "the portal's columns differ from the contract" in by_city[DRIFTING]["reason"]
    drift = [(d["change"], d["column"], d["after"]) for d in by_city[DRIFTING]["schema_drift"]]
    assert drift == [("retyped", "offense_date", "number"), ("removed", "beat", None)]
    assert not by_city[FRESH]["schema_drift"] and not by_city[LATE]["schema_drift"]
    for city in cities:
        assert len(city["days"]) == 60
        assert city["last_success_ago"].endswith("ago")


def test_a_low_day_is_flagged_against_its_weekday(
    server: ApiServer, token: str, seeded: Seeded
) -> None:
    _, cities = server.get("/citypulse/api/health", token)
    seattle = next(c for c in cities if c["dag_id"] == DRIFTING)
    assert [d["day"] for d in seattle["days"] if d["flagged"]] == [seeded.low_day.isoformat()]
    late = next(c for c in cities if c["dag_id"] == LATE)
    assert [d["rows"] for d in late["days"][-LATE_BY_DAYS:]] == [None] * LATE_BY_DAYS


def test_a_failed_validation_keeps_its_report(
    server: ApiServer, token: str, seeded: Seeded
) -> None:
    run_id = seeded.failed_run.run_id
    status, report = server.get(f"/citypulse/api/runs/{FAILING}/{run_id}", token)
    assert status == 200
    validation = report["validation"]
    assert validation["passed"] is False
    assert "failed validation, above the contract's 5% threshold" in validation["message"]
    reasons = validation["report"]["top_reasons"]
    assert any("complaint_type" in reason for reason, _ in reasons), reasons
    assert report["audit"] is None  # nothing loaded
    states = {t["task_id"]: t["state"] for t in report["run"]["tasks"]}
    assert states["validate"] == "failed"


def test_a_loaded_run_reports_expectations_audit_and_rejects(
    server: ApiServer, token: str, seeded: Seeded
) -> None:
    run_id = seeded.passed_run.run_id
    _, report = server.get(f"/citypulse/api/runs/{FRESH}/{run_id}", token)
    (audit,) = query(
        seeded.warehouse,
        "SELECT portal_rows, extracted, loaded, inserted, rejected FROM citypulse.ingest_runs "
        "WHERE dag_id = %s AND run_id = %s",
        (FRESH, run_id),
    )
    assert [
        report["audit"][k] for k in ("portal_rows", "extracted", "loaded", "inserted", "rejected")
    ] == list(audit)
    expectations = report["validation"]["report"]["expectations"]
    assert report["validation"]["passed"] is True and len(expectations) >= 5
    assert 0 < len(report["reject_samples"]) <= 5
    assert all(s["reason"] and s["record"] for s in report["reject_samples"])


def test_the_map_serves_every_forecast_hexagon(
    server: ApiServer, token: str, seeded: Seeded
) -> None:
    _, data = server.get(f"/citypulse/api/map/{FRESH}", token)
    (cells,) = query(
        seeded.warehouse,
        "SELECT count(DISTINCT h3_cell) FROM citypulse.hotspot_predictions WHERE city = %s",
        (FRESH,),
    )
    assert len(data["cells"]) == cells[0] > 0
    assert len(data["days"]) == 7
    assert data["published"]["published"] is True
    assert all(len(c["boundary"]) == 6 for c in data["cells"])
    assert data["observed"], "last week's incidents per hexagon"


def test_each_city_has_its_source_projects_charts(
    server: ApiServer, token: str, contracts: list[Any]
) -> None:
    for contract in contracts:
        _, charts = server.get(f"/citypulse/api/charts/{contract.dag_id}", token)
        assert [c["title"] for c in charts] == [c.title for c in contract.dashboard]
        assert len(charts) >= 2
        assert all(c["labels"] for c in charts), contract.dag_id


# --- In a real browser, through the UI's own navigation -------------------------------------


@pytest.fixture(scope="module")
def page(server: ApiServer) -> Iterator[Any]:
    """A logged-in Chromium page (skipped only where no browser could be installed)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium "
            "(needs apt and root); set CITYPULSE_CHROMIUM to use another"
        )
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(server.url)
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/" not in url)
        yield page
        browser.close()


def open_from_browse(page: Any, server: ApiServer, name: str) -> Any:
    """Open a CityPulse page from the Browse menu; returns its frame once drawn."""
    page.goto(server.url)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name=name).click()
    frame = page.frame_locator(f"iframe[title='{name}']")
    frame.locator("main[data-ready='true']").wait_for()
    return frame


def shoot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_browser_city_health(page: Any, server: ApiServer) -> None:
    frame = open_from_browse(page, server, "CityPulse health")
    for city, status in (
        (FRESH, "fresh"),
        (FAILING, "failing"),
        (LATE, "late"),
        (DRIFTING, "drifting"),
    ):
        card = frame.locator(f"section.card[data-city='{city}']")
        assert card.locator(".status").inner_text().lower() == status
        assert card.locator(".reason").inner_text()
        labels = card.locator("canvas.days").evaluate("c => Chart.getChart(c).data.labels.length")
        assert labels == 60
    drift = frame.locator(f"section.card[data-city='{DRIFTING}'] .schema-drift tbody tr")
    assert drift.count() == 2
    assert "beat" in drift.nth(1).inner_text() and "removed" in drift.nth(1).inner_text()
    assert frame.locator(f"section.card[data-city='{FRESH}'] .schema-drift").count() == 0
    assert (
        frame.locator(f"section.card[data-city='{FRESH}'] a.dag-link").get_attribute("target")
        == "_top"
    )
    shoot(page, "health")


def test_browser_validation_tab_of_a_run(page: Any, server: ApiServer, seeded: Seeded) -> None:
    run = seeded.passed_run
    page.goto(f"{server.url}/dags/{FRESH}/runs/{run.run_id}")
    page.get_by_role("link", name="Validation", exact=True).click()
    frame = page.frame_locator("iframe[title='Validation']")
    frame.locator("main[data-ready='true']").wait_for()
    rows = frame.locator("#expectations tbody tr")
    expected = len(seeded_expectations(server, FRESH, run.run_id))
    assert rows.count() == expected
    assert frame.locator("#audit-row tbody td").first.inner_text()
    assert frame.locator("#validation .status").inner_text().lower() == "passed"
    shoot(page, "validation")

    failed = seeded.failed_run
    page.goto(f"{server.url}/dags/{FAILING}/runs/{failed.run_id}")
    page.get_by_role("link", name="Validation", exact=True).click()
    frame = page.frame_locator("iframe[title='Validation']")
    frame.locator("main[data-ready='true']").wait_for()
    assert frame.locator("#validation .status").first.inner_text().lower() == "failed"
    assert "complaint_type" in frame.locator("#reasons").inner_text()
    assert "has not loaded" in frame.locator("#audit").inner_text()


def seeded_expectations(server: ApiServer, dag_id: str, run_id: str) -> list[Any]:
    _, report = server.get(f"/citypulse/api/runs/{dag_id}/{run_id}", server.token())
    return list(report["validation"]["report"]["expectations"])


def test_browser_hotspot_map(page: Any, server: ApiServer, seeded: Seeded) -> None:
    frame = open_from_browse(page, server, "CityPulse hotspot map")
    frame.locator("select#city").select_option(FRESH)
    frame.locator("main[data-ready='true']").wait_for()
    (cells,) = query(
        seeded.warehouse,
        "SELECT count(DISTINCT h3_cell) FROM citypulse.hotspot_predictions WHERE city = %s",
        (FRESH,),
    )
    canvas = frame.locator("canvas#forecast")
    assert canvas.get_attribute("data-hexagons") == str(cells[0])
    buttons = frame.locator(".days-picker button")
    assert buttons.count() == 7
    buttons.nth(3).click()
    assert canvas.get_attribute("data-day") == buttons.nth(3).get_attribute("data-day")
    assert frame.locator("#models tbody tr").count() >= 2
    # Whether a candidate earned its place or a baseline stands in, the page says which.
    (role,) = query(
        seeded.warehouse,
        "SELECT role FROM citypulse.hotspot_publication WHERE city = %s",
        (FRESH,),
    )
    assert frame.locator("p.published").get_attribute("data-role") == role[0]
    shoot(page, "map")


def test_browser_city_charts(page: Any, server: ApiServer, contracts: list[Any]) -> None:
    frame = open_from_browse(page, server, "CityPulse charts")
    frame.locator("select#city").select_option(FRESH)
    frame.locator("main[data-ready='true']").wait_for()
    charts = frame.locator("section.chart")
    assert charts.count() == len(by_id(contracts, FRESH).dashboard)
    assert frame.locator("table.heat tbody tr").count() == 7  # weekdays
    shoot(page, "charts")


def test_screenshots_were_saved() -> None:
    if not CHROMIUM.exists() or shutil.which("true") is None:
        pytest.skip("no browser")
    for name in ("health", "validation", "map", "charts"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
