-- The warehouse schema and the tables every city shares. Safe to run again.
CREATE SCHEMA IF NOT EXISTS {schema};

-- One row per load: what a run extracted, loaded, rejected, and how the upsert went.
CREATE TABLE IF NOT EXISTS {schema}.ingest_runs (
    id            bigserial PRIMARY KEY,
    dag_id        text        NOT NULL,
    run_id        text        NOT NULL,
    window_start  timestamp   NOT NULL,  -- local wall time of the city
    window_end    timestamp   NOT NULL,
    timezone      text        NOT NULL,
    extracted     integer     NOT NULL,
    loaded        integer     NOT NULL,
    rejected      integer     NOT NULL,
    inserted      integer     NOT NULL,
    updated       integer     NOT NULL,
    unchanged     integer     NOT NULL,
    seconds       double precision NOT NULL,
    status        text        NOT NULL DEFAULT 'success',
    validation    jsonb,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (extracted = loaded + rejected),
    CHECK (loaded = inserted + updated + unchanged)
);
CREATE INDEX IF NOT EXISTS ingest_runs_dag_idx ON {schema}.ingest_runs (dag_id, finished_at);

-- Quarantine: every rejected record, raw as the portal sent it, with why.
CREATE TABLE IF NOT EXISTS {schema}.rejects (
    id           bigserial PRIMARY KEY,
    dag_id       text        NOT NULL,
    record_key   text,
    reason       text        NOT NULL,
    record       jsonb       NOT NULL,
    record_hash  text        NOT NULL,
    first_run_id text        NOT NULL,
    window_start timestamp   NOT NULL,
    window_end   timestamp   NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dag_id, record_hash)
);

-- Incremental capture: how far each dataset's change column has been read. Advanced only in
-- the transaction that loads the records read, so a failed run never skips changes.
CREATE TABLE IF NOT EXISTS {schema}.watermarks (
    dag_id        text PRIMARY KEY,
    change_column text        NOT NULL,
    value         text        NOT NULL,  -- as the portal writes it (ISO, sorts as text)
    run_id        text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {schema}.ingest_runs ADD COLUMN IF NOT EXISTS window_rows integer;
ALTER TABLE {schema}.ingest_runs ADD COLUMN IF NOT EXISTS change_rows integer;
ALTER TABLE {schema}.ingest_runs ADD COLUMN IF NOT EXISTS watermark text;

-- Reconciliation: keys the portal no longer has are soft-deleted, never silently dropped.
CREATE TABLE IF NOT EXISTS {schema}.reconciliations (
    id              bigserial PRIMARY KEY,
    dag_id          text        NOT NULL,
    run_id          text        NOT NULL,
    window_start    timestamp   NOT NULL,
    window_end      timestamp   NOT NULL,
    portal_keys     integer     NOT NULL,
    warehouse_keys  integer     NOT NULL,
    marked_deleted  integer     NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now()
);
