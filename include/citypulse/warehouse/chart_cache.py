"""The dashboard charts' data, computed once per change of the table instead of per request.

A chart's data is its view's value summed per x (and series): an aggregate over the whole
table, seconds at tens of millions of rows. The city's `views` task (after its load)
computes each chart whose cached data is stale and keeps it in `chart_cache` with the table's
version (`table_versions`, bumped by every write that changed rows: warehouse/summary.py)
and the view's definition; the Charts page reads it when both still match, and computes the
chart itself otherwise (a warehouse whose views task has not run since a write).
"""

from __future__ import annotations

import math
import time
from typing import Any

from citypulse.contracts.contract import Chart, Contract
from citypulse.settings import SCHEMA
from citypulse.warehouse.types import Cursor

ChartRows = list[tuple[Any, ...]]


def _identity(contract: Contract, chart: Chart) -> dict[str, Any]:
    return {
        "table": contract.table,
        "view": chart.view,
        "qualified_view": f'"{SCHEMA}"."{chart.view}"',
        "x": chart.x,
        "series": chart.series or "",
        "value": chart.value,
    }


def compute(cur: Cursor, chart: Chart) -> ChartRows:
    """The chart's (x, series, value) rows, aggregated from its view."""
    from citypulse.warehouse.sqlfiles import identifier_or_null, render

    cur.execute(
        render(
            "charts/chart.sql",
            view=chart.view,
            x=chart.x,
            value=chart.value,
            series=identifier_or_null(chart.series or None),
        )
    )
    return list(cur.fetchall())


def cached(cur: Cursor, contract: Contract, chart: Chart) -> ChartRows | None:
    """The chart's rows as cached for the table's current version, or None."""
    from citypulse.warehouse.sqlfiles import render

    cur.execute(render("charts/cached.sql"), _identity(contract, chart))
    row = cur.fetchone()
    if row is None:
        return None
    return [tuple(r) for r in row[0]]


def refresh(cur: Cursor, contract: Contract) -> list[str]:
    """Compute and keep every chart of the city whose cached data is stale; their views."""
    from psycopg2.extras import Json

    from citypulse.warehouse.sqlfiles import render

    refreshed = []
    for chart in contract.dashboard:
        if cached(cur, contract, chart) is not None:
            continue
        identity = _identity(contract, chart)
        cur.execute(render("charts/table_version.sql"), identity)
        version = int(cur.fetchone()[0])
        began = time.perf_counter()
        rows = compute(cur, chart)
        if any(isinstance(v, float) and not math.isfinite(v) for _, _, v in rows):
            continue  # JSON holds no NaN or infinity: this chart is computed per request
        cur.execute(
            render("charts/store.sql"),
            {
                **identity,
                "table_version": version,
                "rows": Json([list(r) for r in rows]),
                "seconds": round(time.perf_counter() - began, 3),
            },
        )
        refreshed.append(chart.view)
    return refreshed
