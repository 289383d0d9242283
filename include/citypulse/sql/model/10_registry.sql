-- The hotspot model registry, its published predictions and the hexagons' shapes.
-- Safe to run again.
CREATE SCHEMA IF NOT EXISTS {schema};

-- One row per model evaluated for a city in a retrain run: baselines, the logistic regression
-- reference and the candidate. `promoted` marks the city's published model (one per city and
-- resolution): the candidate when its lift held, else the run's best baseline; `promoted_at`
-- stays set after it is replaced (`retired_at`). The windows are the newest fold's; `metrics`
-- holds each metric's mean across folds, `sd` and `folds` (per-fold values); `as_of` is the
-- day the run evaluated as (data known before it); `evidence` the figures of the decision;
-- `publication_lag_days` the contract's publication lag the windows were planned with.
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
-- Columns added since the table was first created (only when missing: ALTER TABLE locks).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = {schema_name}
                   AND table_name = 'model_runs' AND column_name = 'as_of') THEN
        ALTER TABLE {schema}.model_runs ADD COLUMN as_of date, ADD COLUMN evidence jsonb;
    END IF;
    -- The contract's publication lag the run's windows and forecast were planned with:
    -- training ends this many days before each test window (features.Windows).
    IF NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = {schema_name}
                   AND table_name = 'model_runs' AND column_name = 'publication_lag_days') THEN
        ALTER TABLE {schema}.model_runs
            ADD COLUMN publication_lag_days smallint NOT NULL DEFAULT 0;
    END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS model_runs_one_champion
    ON {schema}.model_runs (city, resolution) WHERE promoted;
CREATE INDEX IF NOT EXISTS model_runs_city_idx ON {schema}.model_runs (city, created_at);

-- The gates of each city in each run (coverage of records with a hexagon per fold window,
-- hotspot hex-days per test window) with their thresholds; `passed` false: not trained.
CREATE TABLE IF NOT EXISTS {schema}.retrain_gates (
    dag_run_id  text        NOT NULL,
    city        text        NOT NULL,
    resolution  smallint    NOT NULL,
    as_of       date        NOT NULL,
    passed      boolean     NOT NULL,
    reason      text,
    figures     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_run_id, city, resolution)
);

-- Each hexagon's boundary as a GeoJSON Polygon (computed with h3 in Python: PostgreSQL has no h3).
CREATE TABLE IF NOT EXISTS {schema}.hex_cells (
    h3_cell          text PRIMARY KEY,
    resolution       smallint NOT NULL,
    center_lat       double precision NOT NULL,
    center_lon       double precision NOT NULL,
    boundary_geojson jsonb    NOT NULL
);

-- The published model's forecast per hexagon and day: `predicted_hotspot` is the flag (the
-- model's score reaches the threshold tuned on its training rows); `probability` that the
-- hexagon is a hotspot (a learned model's estimate; for a baseline, the Poisson chance of
-- reaching the hotspot threshold at `expected_count`); `expected_count` the incidents a
-- baseline expects (NULL for learned models). A rerun replaces every row of its days.
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
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = {schema_name}
                   AND table_name = 'hotspot_predictions' AND column_name = 'expected_count') THEN
        ALTER TABLE {schema}.hotspot_predictions ADD COLUMN expected_count double precision;
    END IF;
END
$$;

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
       ) AS feature,
       p.expected_count
FROM {schema}.hotspot_predictions p
JOIN {schema}.hex_cells c ON c.h3_cell = p.h3_cell
JOIN {schema}.model_runs m ON m.id = p.model_run_id;

-- What each city publishes, one row per (city, resolution) with a published model:
--   city, resolution, model_run_id, model_kind,
--   role        'candidate' (its lift over the best baseline held) or 'baseline' (no
--               candidate qualified: the best baseline of that run is published),
--   decision    the decision in words, with its figures (evidence: the same as jsonb),
--   as_of, train_start, train_end, test_start, test_end (the newest fold's windows),
--   metrics     the published model's metrics (means across folds, `sd`, `folds`),
--   baselines   jsonb (model_kind -> metrics) of the baselines of the same retrain run,
--   dag_run_id, promoted_at, evidence.
CREATE OR REPLACE VIEW {schema}.hotspot_publication AS
SELECT m.city,
       m.resolution,
       m.id AS model_run_id,
       m.model_kind,
       m.role,
       m.decision,
       m.as_of,
       m.train_start,
       m.train_end,
       m.test_start,
       m.test_end,
       m.metrics,
       (SELECT jsonb_object_agg(b.model_kind, b.metrics ORDER BY b.model_kind)
        FROM {schema}.model_runs b
        WHERE b.dag_run_id = m.dag_run_id AND b.city = m.city
          AND b.resolution = m.resolution AND b.role = 'baseline') AS baselines,
       m.dag_run_id,
       m.promoted_at,
       m.evidence
FROM {schema}.model_runs m
WHERE m.promoted;
