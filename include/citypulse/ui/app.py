"""The FastAPI app the CityPulse plugin mounts in Airflow's api-server at `/citypulse`.

Pages (drawn in the browser from the JSON API, so page and API never disagree):
  /health                       every city's status, lag and last 60 days
  /runs/{dag_id}/{run_id}       a run's validation report (the run page's Validation tab)
  /map?city=                    the published hotspot forecast as H3 hexagons (mapped cities)
  /charts?city=                 the source projects' questions as charts
JSON: the same under /api/... . Everything, scripts included, requires an Airflow login.
"""

from __future__ import annotations

import asyncio
import html
from functools import cache
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from citypulse.contracts.contract import Contract
from citypulse.exceptions import WarehouseError

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CHART_JS = "vendor/chart.js-4.6.1/chart.umd.min.js"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
PAGES = {
    "health": "City health",
    "run": "Validation report",
    "map": "Hotspot map",
    "charts": "City charts",
}

app = FastAPI(title="CityPulse", dependencies=[Depends(get_user)])


@app.exception_handler(WarehouseError)
async def warehouse_down(_request: Request, exc: WarehouseError) -> JSONResponse:
    """The warehouse is unreachable: say so (503), not a bare 500."""
    return JSONResponse({"detail": str(exc)}, status_code=503)


@cache
def _contracts() -> list[Contract]:
    """The contracts as the api-server found them at start (like the DAGs it serves)."""
    from citypulse.contracts.contract import load_contracts

    contracts, _errors = load_contracts()
    return contracts


def _contract(city: str) -> Contract:
    for contract in _contracts():
        if contract.dag_id == city:
            return contract
    raise HTTPException(404, f"no CityPulse city {city!r}")


def _page(request: Request, page: str, **data: str) -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/") + "/"
    attributes = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in data.items())
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>CityPulse · {PAGES[page]}</title>"
        f'<base href="{html.escape(base)}">'
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        '<link rel=stylesheet href="static/citypulse.css">'
        f'<script src="static/{CHART_JS}" defer></script>'
        '<script src="static/citypulse.js" defer></script>'
        f'</head><body><main id=app data-page="{page}" {attributes}>'
        "<p class=muted>Loading…</p></main></body></html>"
    )
    return HTMLResponse(body)


@app.get("/", include_in_schema=False)
async def index() -> RedirectResponse:
    return RedirectResponse("health")


@app.get("/health", response_class=HTMLResponse, include_in_schema=False)
async def health_page(request: Request) -> HTMLResponse:
    return _page(request, "health")


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, include_in_schema=False)
async def run_page(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
    return _page(request, "run", dag=dag_id, run=run_id)


@app.get("/map", response_class=HTMLResponse, include_in_schema=False)
async def map_page(request: Request, city: str = "") -> HTMLResponse:
    return _page(request, "map", city=city)


@app.get("/charts", response_class=HTMLResponse, include_in_schema=False)
async def charts_page(request: Request, city: str = "") -> HTMLResponse:
    return _page(request, "charts", city=city)


@app.get("/static/{path:path}", include_in_schema=False)
async def static(path: str) -> Response:
    file = (STATIC / path).resolve()
    if STATIC not in file.parents or file.suffix not in STATIC_TYPES or not file.is_file():
        raise HTTPException(404)
    return Response(
        file.read_bytes(),
        media_type=STATIC_TYPES[file.suffix],
        headers={"Cache-Control": "private, max-age=3600"},
    )


@app.get("/api/cities")
async def cities() -> list[dict[str, Any]]:
    return [
        {
            "dag_id": c.dag_id,
            "title": c.title,
            "timezone": c.timezone,
            "charts": len(c.dashboard),
            "mapped": c.modelled,  # has a hotspot forecast to map
        }
        for c in _contracts()
    ]


@app.get("/api/health")
async def health() -> Any:
    from citypulse.ui.health import city_health

    return await asyncio.to_thread(city_health, _contracts())


@app.get("/api/runs/{dag_id}/{run_id}")
async def run_report(dag_id: str, run_id: str) -> Any:
    from citypulse.ui.run_report import run_report

    return await asyncio.to_thread(run_report, _contracts(), dag_id, run_id)


@app.get("/api/map/{city}")
async def forecast_map(city: str) -> Any:
    from citypulse.ui.forecast import forecast_map

    contract = _contract(city)
    if not contract.modelled:
        raise HTTPException(
            404, f"{city} is not mapped: its contract has no coordinates or `incidents:` mapping"
        )
    return await asyncio.to_thread(forecast_map, contract)


@app.get("/api/charts/{city}")
async def charts(city: str) -> Any:
    from citypulse.ui.charts import city_charts

    return await asyncio.to_thread(city_charts, _contract(city))
