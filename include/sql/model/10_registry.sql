-- The hotspot model registry, its published predictions and the hexagons' shapes.
-- Safe to run again.
CREATE SCHEMA IF NOT EXISTS {schema};

-- One row per model evaluated for a city in a retrain run: baselines, the logistic regression
-- reference and the candidate. `promoted` marks the city's current champion (one per city and
-- resolution); `promoted_at` stays set after a champion is replaced (`retired_at`).
CREATE TABLE IF NOT EXISTS {schema}.model_runs (
    id              bigserial PRIMARY KEY,
    dag_run_id      text        NOT NULL,
    city            text        NOT NULL,
    resolution      smallint    NOT NULL CHECK (resolution IN (7, 8)),
    model_kind      text        NOT NULL,
    role            text        NOT NULL CHECK (role IN ('baseline', 'reference', 'candidate')),
    params          jsonb       NOT NULL,
    train_start     date        NOT NULL,
    train_end       date        NOT NULL,
    test_start      date        NOT NULL,
    test_end        date        NOT NULL,
    label_threshold double precision NOT NULL,
    metrics         jsonb       NOT NULL,
    artifact_path   text,
    decision        text,
    promoted        boolean     NOT NULL DEFAULT false,
    promoted_at     timestamptz,
    retired_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dag_run_id, city, resolution, model_kind),
    CHECK (train_start <= train_end AND train_end < test_start AND test_start <= test_end)
);
CREATE UNIQUE INDEX IF NOT EXISTS model_runs_one_champion
    ON {schema}.model_runs (city, resolution) WHERE promoted;
CREATE INDEX IF NOT EXISTS model_runs_city_idx ON {schema}.model_runs (city, created_at);

-- Each hexagon's boundary as a GeoJSON Polygon (computed with h3 in Python: PostgreSQL has no h3).
CREATE TABLE IF NOT EXISTS {schema}.hex_cells (
    h3_cell          text PRIMARY KEY,
    resolution       smallint NOT NULL,
    center_lat       double precision NOT NULL,
    center_lon       double precision NOT NULL,
    boundary_geojson jsonb    NOT NULL
);

-- The champion's forecast: probability that a hexagon is a hotspot on each of the next days.
CREATE TABLE IF NOT EXISTS {schema}.hotspot_predictions (
    city              text             NOT NULL,
    h3_cell           text             NOT NULL,
    resolution        smallint         NOT NULL,
    day               date             NOT NULL,
    probability       double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
    predicted_hotspot boolean          NOT NULL,
    model_run_id      bigint           NOT NULL REFERENCES {schema}.model_runs (id),
    features_as_of    date             NOT NULL,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (city, resolution, day, h3_cell)
);

-- Predictions with each hexagon's shape, ready for any map tool: `geometry` is a GeoJSON
-- Polygon, `feature` a GeoJSON Feature (jsonb_agg them into a FeatureCollection).
CREATE OR REPLACE VIEW {schema}.hotspot_map AS
SELECT p.city,
       p.day,
       p.h3_cell,
       p.resolution,
       p.probability,
       p.predicted_hotspot,
       p.model_run_id,
       m.model_kind,
       p.features_as_of,
       c.center_lat,
       c.center_lon,
       c.boundary_geojson AS geometry,
       jsonb_build_object(
           'type', 'Feature',
           'geometry', c.boundary_geojson,
           'properties', jsonb_build_object(
               'city', p.city,
               'day', p.day,
               'h3_cell', p.h3_cell,
               'probability', round(p.probability::numeric, 4),
               'predicted_hotspot', p.predicted_hotspot,
               'model_kind', m.model_kind
           )
       ) AS feature
FROM {schema}.hotspot_predictions p
JOIN {schema}.hex_cells c ON c.h3_cell = p.h3_cell
JOIN {schema}.model_runs m ON m.id = p.model_run_id;
