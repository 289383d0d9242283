"""The UI plugin: pipeline health from the warehouse, behind Airflow's login."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def plugin() -> Any:
    spec = importlib.util.spec_from_file_location(
        "citypulse_health", ROOT / "plugins" / "citypulse_health.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_registers_app_and_nav_entry(plugin: Any) -> None:
    (app,) = plugin.CityPulsePlugin.fastapi_apps
    assert app["url_prefix"] == "/citypulse"
    (view,) = plugin.CityPulsePlugin.external_views
    assert not view["href"].startswith("/")  # relative, so it works behind a proxy


def test_health_needs_a_login(plugin: Any) -> None:
    from fastapi.testclient import TestClient

    response = TestClient(plugin.app).get("/health")
    assert response.status_code in (401, 403)


def test_health_reports_each_loaded_city(plugin: Any, warehouse: str, contracts: list[Any]) -> None:
    from fastapi.testclient import TestClient

    from citypulse.tables import ensure_schema
    from citypulse.views import build_views
    from citypulse.warehouse import connect

    with connect() as conn, conn.cursor() as cur:
        ensure_schema(cur)
        build_views(cur, contracts[0], contracts)
        cur.execute(
            "INSERT INTO citypulse.ingest_runs (dag_id, run_id, window_start, window_end, "
            "timezone, extracted, loaded, rejected, inserted, updated, unchanged, seconds) "
            "VALUES ('plugin_city', 'r1', '2025-01-01', '2025-01-02', 'UTC', 3, 2, 1, 2, 0, 0, 1)"
        )
    plugin.app.dependency_overrides[plugin.get_user] = lambda: object()
    try:
        client = TestClient(plugin.app)
        rows = client.get("/health").json()
        page = client.get("/").text
    finally:
        plugin.app.dependency_overrides.clear()
    mine = [r for r in rows if r["city"] == "plugin_city"]
    assert mine == [
        {
            "city": "plugin_city",
            "last_success_at": mine[0]["last_success_at"],
            "last_window_start": "2025-01-01 00:00:00",
            "last_loaded": "2",
            "last_rejected": "1",
            "runs": "1",
            "rows_in_table": None,
            "rows_rejected": "1",
            "event_lag": None,
        }
    ]
    assert "plugin_city" in page
