"""The UI plugin's registration: its app, its Browse entries and the run tab."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def plugin() -> Any:
    spec = importlib.util.spec_from_file_location(
        "citypulse_ui", ROOT / "plugins" / "citypulse_ui.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_mounts_one_app_under_citypulse(plugin: Any) -> None:
    (app,) = plugin.CityPulsePlugin.fastapi_apps
    assert app["url_prefix"] == "/citypulse"
    paths = {route.path for route in app["app"].routes}
    assert {"/health", "/map", "/charts", "/runs/{dag_id}/{run_id}", "/api/health"} <= paths


def test_every_page_is_reachable_from_the_ui(plugin: Any) -> None:
    views = plugin.CityPulsePlugin.external_views
    nav = {v["href"] for v in views if v["destination"] == "nav"}
    assert nav == {"citypulse/health", "citypulse/map", "citypulse/charts"}
    (tab,) = [v for v in views if v["destination"] == "dag_run"]
    # The UI fills these in for the run the tab is opened on.
    assert tab["href"] == "citypulse/runs/{DAG_ID}/{RUN_ID}"
    # Relative: the UI resolves them against its own base URL, so they work behind a proxy.
    assert not any(v["href"].startswith("/") for v in views)
    assert len({v["url_route"] for v in views}) == len(views)


def test_static_files_stay_inside_their_folder() -> None:
    from helpers import ui_get

    answers = ui_get(
        "/static/citypulse.js",
        "/static/../app.py",
        "/static/..%2Fapp.py",
        "/static/vendor/chart.js-4.6.1/LICENSE.md",
    )
    assert [a.status_code for a in answers] == [200, 404, 404, 404]


def test_an_unreachable_warehouse_is_a_503_that_says_so(
    monkeypatch: pytest.MonkeyPatch, airflow_db: str
) -> None:
    from helpers import free_port, ui_get

    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", f"postgresql://nobody@127.0.0.1:{free_port()}/citypulse"
    )
    (response,) = ui_get("/api/health")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("cannot connect to the warehouse")
