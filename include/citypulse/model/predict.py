"""The champion's forecast for the next days per hexagon, and the hexagons' GeoJSON shapes.

Forecasts start from the serving day's features (the day after the data: every count it uses
is known). Each of the next HORIZON_DAYS days reuses those count features with its own day of
week and holiday flag, so the forecast for day 7 leans on counts a week old: read it as
"where hotspots are likely this week", sharpest for the first day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from psycopg2.extras import execute_values

from citypulse.model.config import HORIZON_DAYS
from citypulse.model.features import add_calendar
from citypulse.model.models import model_scores
from citypulse.sqlfiles import render


def forecast_frame(serving: pd.DataFrame, holidays: set[date], horizon: int) -> pd.DataFrame:
    """Rows for the `horizon` days from the serving day, calendar features per target day."""
    start = serving["local_day"].min()
    days = [start + pd.Timedelta(days=offset) for offset in range(horizon)]
    frames = [serving.assign(local_day=day) for day in days]
    forecast = pd.concat(frames, ignore_index=True)
    return add_calendar(forecast, holidays).sort_values(["local_day", "h3_cell"], ignore_index=True)


def forecast(
    estimator: Any, serving: pd.DataFrame, holidays: set[date], horizon: int = HORIZON_DAYS
) -> pd.DataFrame:
    """(h3_cell, local_day, probability, predicted_hotspot) for the next `horizon` days."""
    rows = forecast_frame(serving, holidays, horizon)
    scores = model_scores(estimator, rows)
    return pd.DataFrame(
        {
            "h3_cell": rows["h3_cell"],
            "local_day": rows["local_day"].dt.date,
            "probability": scores.score.astype(float),
            "predicted_hotspot": scores.predicted,
        }
    )


def cell_geometry(cell: str) -> tuple[float, float, dict[str, Any]]:
    """A cell's centre (lat, lon) and its boundary as a closed GeoJSON Polygon ([lon, lat])."""
    import h3

    lat, lon = h3.cell_to_latlng(cell)
    ring = [[round(p_lon, 7), round(p_lat, 7)] for p_lat, p_lon in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return lat, lon, {"type": "Polygon", "coordinates": [ring]}


def upsert_cells(cur: Any, cells: list[str], resolution: int) -> int:
    """Store the shapes of cells not yet in `hex_cells`; returns how many were offered."""
    from psycopg2.extras import Json

    rows = []
    for cell in sorted(set(cells)):
        lat, lon, polygon = cell_geometry(cell)
        rows.append((cell, resolution, lat, lon, Json(polygon)))
    if rows:
        execute_values(cur, render("model/upsert_hex_cells.sql").as_string(cur), rows)
    return len(rows)


def upsert_predictions(
    cur: Any,
    city: str,
    resolution: int,
    model_run_id: int,
    features_as_of: date,
    predictions: pd.DataFrame,
) -> int:
    """Write the forecast; a rerun for the same days replaces its rows instead of adding."""
    rows = [
        (city, cell, resolution, day, float(p), bool(flag), model_run_id, features_as_of)
        for cell, day, p, flag in zip(
            predictions["h3_cell"],
            predictions["local_day"],
            predictions["probability"],
            predictions["predicted_hotspot"],
            strict=True,
        )
    ]
    if rows:
        execute_values(
            cur, render("model/upsert_predictions.sql").as_string(cur), rows, page_size=2000
        )
    return len(rows)
