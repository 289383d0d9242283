"""The published model's forecast for the next days per hexagon, and the hexagons' shapes.

Forecasts start from the serving day's features (the day after the data: every count it uses
is known). The HORIZON_DAYS days from the forecast's first day (the publication lag after the
serving day) reuse those count features with their own day of week and holiday flag, exactly
as the backtest scored each horizon (features.as_published). A row is flagged when the
model's score reaches the threshold tuned on its training rows; its probability is the score
through the model's calibration (fitted on training rows), so the map's colours mean what
they say; a published baseline also says the incidents it expects. A model registered before
calibration existed falls back to its raw probability (a baseline: the Poisson chance of
reaching the hotspot threshold at its expected count).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from psycopg2.extras import execute_values

from citypulse.model import models
from citypulse.model.config import BASELINE_KINDS, DECISION_THRESHOLD, HORIZON_DAYS
from citypulse.model.features import add_calendar
from citypulse.model.registry import Champion, load_artifact
from citypulse.warehouse.sqlfiles import as_text, render
from citypulse.warehouse.types import Cursor


def forecast_frame(
    serving: pd.DataFrame, holidays: set[date], horizon: int, start: date | None = None
) -> pd.DataFrame:
    """Rows for the `horizon` days from `start` (default the serving day), calendar features
    per target day, the serving day's count features on every one."""
    first = serving["local_day"].min() if start is None else pd.Timestamp(start)
    days = [first + pd.Timedelta(days=offset) for offset in range(horizon)]
    frames = [serving.assign(local_day=day) for day in days]
    forecast = pd.concat(frames, ignore_index=True)
    return add_calendar(forecast, holidays).sort_values(["local_day", "h3_cell"], ignore_index=True)


def forecast(
    model: Champion,
    serving: pd.DataFrame,
    holidays: set[date],
    horizon: int = HORIZON_DAYS,
    start: date | None = None,
) -> pd.DataFrame:
    """(h3_cell, local_day, probability, predicted_hotspot, expected_count) for `horizon`
    days from `start`, from the published model (a baseline rule or a saved estimator)."""
    from scipy.stats import poisson

    rows = forecast_frame(serving, holidays, horizon, start)
    threshold = model.params.get("flag_threshold")
    calibration = models.Calibration.from_dict(model.params.get("calibration"))
    if model.model_kind in BASELINE_KINDS:
        expected = models.baseline_score(model.model_kind, rows, model.params.get("fitted"))
        probability = poisson.sf(model.label_threshold - 1, expected)
        score = expected
    else:
        if model.artifact_path is None:
            raise ValueError(f"model run {model.id} ({model.model_kind}) has no artifact")
        estimator, metadata = load_artifact(model.artifact_path)
        threshold = metadata.get("flag_threshold", DECISION_THRESHOLD)
        probability = score = models.probabilities(estimator, rows)
        expected = np.full(len(rows), np.nan)
    if calibration is not None:
        probability = calibration.apply(score)
    cut = float("inf") if threshold is None else float(threshold)
    return pd.DataFrame(
        {
            "h3_cell": rows["h3_cell"],
            "local_day": rows["local_day"].dt.date,
            "probability": np.clip(np.asarray(probability, dtype=float), 0.0, 1.0),
            "predicted_hotspot": score >= cut,
            "expected_count": expected,
        }
    )


def cell_geometry(cell: str) -> tuple[float, float, dict[str, Any]]:
    """A cell's centre (lat, lon) and its boundary as a closed GeoJSON Polygon ([lon, lat])."""
    import h3

    lat, lon = h3.cell_to_latlng(cell)
    ring = [[round(p_lon, 7), round(p_lat, 7)] for p_lat, p_lon in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return lat, lon, {"type": "Polygon", "coordinates": [ring]}


def upsert_cells(cur: Cursor, cells: list[str], resolution: int) -> int:
    """Store the shapes of cells not yet in `hex_cells`; returns how many were offered."""
    from psycopg2.extras import Json

    rows = []
    for cell in sorted(set(cells)):
        lat, lon, polygon = cell_geometry(cell)
        rows.append((cell, resolution, lat, lon, Json(polygon)))
    if rows:
        execute_values(cur, as_text(render("model/upsert_hex_cells.sql"), cur), rows)
    return len(rows)


def replace_predictions(
    cur: Cursor,
    city: str,
    resolution: int,
    model_run_id: int,
    features_as_of: date,
    predictions: pd.DataFrame,
) -> int:
    """Write the forecast after deleting every row of its days (any model, any hexagon), in
    the caller's transaction: a rerun leaves no stale row beside the new ones."""
    if predictions.empty:
        return 0
    days = predictions["local_day"]
    cur.execute(
        render("model/replace_predictions.sql"),
        {"city": city, "resolution": resolution, "first": days.min(), "last": days.max()},
    )
    rows = [
        (
            city,
            cell,
            resolution,
            day,
            float(p),
            bool(flag),
            model_run_id,
            features_as_of,
            None if np.isnan(count) else float(count),
        )
        for cell, day, p, flag, count in zip(
            predictions["h3_cell"],
            days,
            predictions["probability"],
            predictions["predicted_hotspot"],
            predictions["expected_count"],
            strict=True,
        )
    ]
    execute_values(cur, as_text(render("model/insert_predictions.sql"), cur), rows, page_size=2000)
    return len(rows)
