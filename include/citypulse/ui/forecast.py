"""The hotspot map: the published forecast per hexagon and day beside last week's counts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from citypulse.contracts.contract import Contract
from citypulse.ui.db import exists, fetch, reading

FORECAST_OBSERVED_DAYS = 7


@dataclass(frozen=True)
class ForecastCell:
    h3_cell: str
    boundary: list[tuple[float, float]]  # (lat, lon) vertices
    probability: dict[str, float]  # per day (ISO date)
    flagged: dict[str, bool]


@dataclass(frozen=True)
class ObservedCell:
    h3_cell: str
    boundary: list[tuple[float, float]]
    incidents: int


@dataclass(frozen=True)
class ForecastMap:
    city: str
    title: str
    bbox: dict[str, float]
    resolution: int | None = None
    features_as_of: date | None = None
    days: list[date] = field(default_factory=list)
    published: dict[str, Any] | None = None
    cells: list[ForecastCell] = field(default_factory=list)
    observed_first_day: date | None = None
    observed_last_day: date | None = None
    observed: list[ObservedCell] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)


def _boundary(cell: str) -> list[tuple[float, float]]:
    import h3

    return [(round(lat, 6), round(lon, 6)) for lat, lon in h3.cell_to_boundary(cell)]


def forecast_map(contract: Contract) -> ForecastMap:
    """The city's published forecast per hexagon and day, last week's observed incidents per
    hexagon, and how the published model compares with the others of its retrain."""
    box = contract.bbox
    extent = (
        {}
        if box is None
        else {
            "min_lat": box.min_lat,
            "max_lat": box.max_lat,
            "min_lon": box.min_lon,
            "max_lon": box.max_lon,
        }
    )
    empty = ForecastMap(contract.dag_id, contract.title, extent)
    with reading() as cur:
        if not exists(cur, "hotspot_predictions"):
            return empty
        rows = fetch(cur, "ui/published_forecast.sql", {"city": contract.dag_id})
        if not rows:
            return empty
        resolution, as_of, model_run_id = rows[0][2], rows[0][5], rows[0][6]
        probability: dict[str, dict[str, float]] = defaultdict(dict)
        flagged: dict[str, dict[str, bool]] = defaultdict(dict)
        for day, cell, _res, p, hot, _as_of, _run in rows:
            probability[cell][day.isoformat()] = p
            flagged[cell][day.isoformat()] = hot
        models = [
            {
                "id": mid,
                "model_kind": kind,
                "role": role,
                "metrics": metrics,
                "decision": decision,
                "promoted": promoted,
                "test_start": test_start,
                "test_end": test_end,
                "published": published,
            }
            for mid, kind, role, metrics, decision, promoted, test_start, test_end, published in (
                fetch(cur, "ui/model_comparison.sql", {"model_run_id": model_run_id})
            )
        ]
        first = as_of - timedelta(days=FORECAST_OBSERVED_DAYS - 1)
        observed = fetch(
            cur,
            "ui/observed_cells.sql",
            {
                "city": contract.dag_id,
                "resolution": resolution,
                "first_day": first,
                "last_day": as_of,
            },
        )
    return ForecastMap(
        city=contract.dag_id,
        title=contract.title,
        bbox=empty.bbox,
        resolution=resolution,
        features_as_of=as_of,
        days=sorted({row[0] for row in rows}),
        published=next((m for m in models if m["published"]), None),
        cells=[
            ForecastCell(cell, _boundary(cell), probability[cell], flagged[cell])
            for cell in sorted(probability)
        ],
        observed_first_day=first,
        observed_last_day=as_of,
        observed=[ObservedCell(cell, _boundary(cell), int(n)) for cell, n in observed if cell],
        models=models,
    )
