"""The dashboard charts' cache (`citypulse.warehouse.chart_cache`): the `views` task caches
each chart for the table as it is; the Charts page answers exactly as computing it would,
from the cache while the table is unchanged, and never from a cache a later write made
stale."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import query
from helpers import by_id, ui_get
from test_summary import edited, generated, load


def charts_json(city: str) -> Any:
    (response,) = ui_get(f"/api/charts/{city}")
    assert response.status_code == 200, response.text
    return response.json()


def computed(contract: Any) -> list[Any]:
    from citypulse.warehouse import chart_cache
    from citypulse.warehouse.connection import connect

    with connect() as conn, conn.cursor() as cur:
        return [sorted(chart_cache.compute(cur, chart)) for chart in contract.dashboard]


def cached(contract: Any) -> list[Any]:
    from citypulse.warehouse import chart_cache
    from citypulse.warehouse.connection import connect

    with connect() as conn, conn.cursor() as cur:
        return [chart_cache.cached(cur, contract, chart) for chart in contract.dashboard]


@pytest.mark.integration
def test_charts_come_from_the_cache_only_while_the_table_is_unchanged(
    fresh_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.pipeline.views import build_city_views

    nyc = by_id(contracts, "nyc_311")
    records = generated(nyc, seed=31)
    load(fresh_warehouse, nyc, records, "first")
    build_city_views(nyc, contracts, fresh_warehouse)
    live = charts_json(nyc.dag_id)
    assert any(chart["labels"] for chart in live)
    assert [sorted(c) for c in cached(nyc)] == computed(nyc)  # every chart cached, exactly
    assert query(fresh_warehouse, "SELECT count(*) FROM citypulse.chart_cache") == [(3,)]

    load(fresh_warehouse, nyc, edited(nyc, records), "edits")  # no views task yet
    assert cached(nyc) == [None, None, None]  # stale: the page computes them
    after_edit = charts_json(nyc.dag_id)
    assert after_edit != live
    build_city_views(nyc, contracts, fresh_warehouse)
    assert charts_json(nyc.dag_id) == after_edit
    assert [sorted(c) for c in cached(nyc)] == computed(nyc)
    load(fresh_warehouse, nyc, edited(nyc, records), "rerun")  # changes nothing: still fresh
    assert [sorted(c) for c in cached(nyc)] == computed(nyc)
