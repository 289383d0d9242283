"""CityPulse pipeline health inside the Airflow UI.

A FastAPI app mounted in the api-server at `/citypulse` serves the warehouse's
`pipeline_health` view (last success, rows, rejects, event lag per city) as JSON and as a
small HTML page, and a nav entry under Browse opens that page. Both require an Airflow login.
"""

from __future__ import annotations

import asyncio
import html
import sys
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

_INCLUDE = Path(__file__).resolve().parents[1] / "include"
if str(_INCLUDE) not in sys.path:  # the package ships beside plugins/, not installed
    sys.path.insert(0, str(_INCLUDE))

COLUMNS = (
    "city",
    "last_success_at",
    "last_window_start",
    "last_loaded",
    "last_rejected",
    "runs",
    "rows_in_table",
    "rows_rejected",
    "event_lag",
)

app = FastAPI(title="CityPulse", dependencies=[Depends(get_user)])


def read_health() -> list[dict[str, Any]]:
    """Rows of `pipeline_health`, or none when no city has loaded yet."""
    from psycopg2 import sql

    from citypulse.settings import SCHEMA
    from citypulse.warehouse import connect

    statement = sql.SQL("SELECT {} FROM {} ORDER BY city").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS),
        sql.Identifier(SCHEMA, "pipeline_health"),
    )
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.pipeline_health",))
        if cur.fetchone()[0] is None:
            return []
        cur.execute(statement)
        return [
            dict(zip(COLUMNS, (None if v is None else str(v) for v in row), strict=True))
            for row in cur
        ]


@app.get("/health")
async def health() -> list[dict[str, Any]]:
    return await asyncio.to_thread(read_health)


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    rows = await asyncio.to_thread(read_health)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{html.escape(row[c] or '')}</td>" for c in COLUMNS) + "</tr>"
            for row in rows
        )
        or f"<tr><td colspan={len(COLUMNS)}>No city has loaded yet.</td></tr>"
    )
    return (
        "<!doctype html><title>CityPulse health</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        "</style><h2>CityPulse pipeline health</h2>"
        f"<table><tr>{head}</tr>{body}</table>"
    )


class CityPulsePlugin(AirflowPlugin):
    name = "citypulse"
    fastapi_apps = [{"app": app, "url_prefix": "/citypulse", "name": "CityPulse health"}]
    external_views = [
        {
            "name": "CityPulse health",
            "href": "citypulse/",
            "destination": "nav",
            "category": "browse",
            "url_route": "citypulse_health",
        }
    ]
