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
-- What the portal counted (`count(*)`) for the run's queries: every load equals it.
ALTER TABLE {schema}.ingest_runs ADD COLUMN IF NOT EXISTS portal_rows integer;

-- Rejects: the local day of the raw record's event time, as far as it reads as one, so the
-- partition audit can count them with the day; a reject is resolved when its record leaves
-- the portal (the audit's repair finds it gone).
ALTER TABLE {schema}.rejects ADD COLUMN IF NOT EXISTS event_day date;
ALTER TABLE {schema}.rejects ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
ALTER TABLE {schema}.rejects ADD COLUMN IF NOT EXISTS resolution text;

-- Partition audits: per day of the whole history, the portal's count (and newest change)
-- against the warehouse's; one row per audit, with what it repaired.
CREATE TABLE IF NOT EXISTS {schema}.partition_audits (
    id              bigserial PRIMARY KEY,
    dag_id          text        NOT NULL,
    run_id          text        NOT NULL,
    days_checked    integer     NOT NULL,
    days_differing  integer     NOT NULL,
    days_repaired   integer     NOT NULL,
    rows_inserted   integer     NOT NULL,
    rows_updated    integer     NOT NULL,
    rows_deleted    integer     NOT NULL,
    rejects_resolved integer    NOT NULL,
    seconds         double precision NOT NULL,
    repaired        jsonb       NOT NULL,  -- per day repaired: the counts that differed
    finished_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS partition_audits_dag_idx ON {schema}.partition_audits (dag_id, finished_at);
-- An audit refused (`refusal` says why: a portal outage, a delete over the guard) still
-- counts what it did before; days disputed are those whose grouped count on the portal
-- keeps disagreeing with the day's records (`disputed`: the day, both numbers).
ALTER TABLE {schema}.partition_audits ADD COLUMN IF NOT EXISTS outcome text NOT NULL DEFAULT 'complete';
ALTER TABLE {schema}.partition_audits ADD COLUMN IF NOT EXISTS refusal text;
ALTER TABLE {schema}.partition_audits ADD COLUMN IF NOT EXISTS days_disputed integer NOT NULL DEFAULT 0;
ALTER TABLE {schema}.partition_audits ADD COLUMN IF NOT EXISTS disputed jsonb NOT NULL DEFAULT '[]';

-- The portal's signature of each day when the warehouse last agreed with it: a newer change
-- on the portal than this (and than the warehouse's own) sends the day to repair.
CREATE TABLE IF NOT EXISTS {schema}.partition_days (
    dag_id          text        NOT NULL,
    day             date        NOT NULL,
    portal_rows     integer     NOT NULL,
    portal_changed  text,
    verified_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, day)
);

-- Days whose records, read again by a repair (count-verified), disagree with the portal's
-- grouped count for the day. An audit finding the same gap again neither repairs the day
-- again nor records it in partition_days: it reports the day as disputed.
CREATE TABLE IF NOT EXISTS {schema}.partition_disputes (
    dag_id          text        NOT NULL,
    day             date        NOT NULL,
    grouped_rows    integer     NOT NULL,  -- the grouped query's count
    record_rows     integer     NOT NULL,  -- the day's records read (as the warehouse holds them)
    portal_changed  text,                  -- the grouped query's newest change of the day
    seen_at         timestamptz NOT NULL DEFAULT now(),
    reported_at     timestamptz,           -- when an audit first reported the day disputed
    PRIMARY KEY (dag_id, day)
);

-- Every validation of a city run, passed or failed: each expectation's verdict and counts and
-- the reject reasons (the UI's Validation tab of a run). A failed one is the only record of
-- why nothing loaded.
CREATE TABLE IF NOT EXISTS {schema}.validation_reports (
    id          bigserial   PRIMARY KEY,
    dag_id      text        NOT NULL,
    run_id      text        NOT NULL,
    passed      boolean     NOT NULL,
    message     text,
    report      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS validation_reports_run_idx
    ON {schema}.validation_reports (dag_id, run_id);
-- Who validated: the run's own `validate`, or `reconcile` for the days a partition audit read
-- again (the run's Validation tab shows the former).
ALTER TABLE {schema}.validation_reports
    ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'validate';

-- Schema drift: each difference between a dataset's columns at the portal (its view metadata)
-- and its contract, recorded by the first run that sees it and resolved by the first run that
-- no longer does; a difference that persists is one row, however many runs see it.
CREATE TABLE IF NOT EXISTS {schema}.schema_changes (
    id              bigserial   PRIMARY KEY,
    dag_id          text        NOT NULL,
    dataset         text        NOT NULL,  -- portal/dataset_id
    run_id          text        NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    change          text        NOT NULL CHECK (change IN ('added', 'removed', 'retyped')),
    column_name     text        NOT NULL,  -- the wire field name
    before          text,                  -- what the contract expects (its type); NULL: added
    after           text,                  -- the portal's dataTypeName; NULL: removed
    required        boolean     NOT NULL DEFAULT false,
    resolved_at     timestamptz,
    resolved_run_id text
);
CREATE INDEX IF NOT EXISTS schema_changes_open_idx
    ON {schema}.schema_changes (dag_id) WHERE resolved_at IS NULL;

-- `value` as the type of `example` (a typed NULL), or NULL when it does not read as one: a
-- reject's raw key (text) matched against a typed key column by the column's own index
-- (`t.key = cp_try_cast(r.record_key, NULL::bigint)`), where `t.key::text = r.record_key`
-- would read every row of the table for each reject.
CREATE OR REPLACE FUNCTION {schema}.cp_try_cast(value text, example anyelement)
RETURNS anyelement
LANGUAGE plpgsql STABLE AS $function$
BEGIN
    EXECUTE format('SELECT %L::%s', value, pg_typeof(example)) INTO example;
    RETURN example;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$function$;

-- How many writes each typed table has had (bumped by its summary triggers, summary/
-- functions.sql): what a cached answer computed from the table is checked against.
CREATE TABLE IF NOT EXISTS {schema}.table_versions (
    table_name text   PRIMARY KEY,
    version    bigint NOT NULL
);

-- Each dashboard chart's data (charts/cached.sql), computed by the city's `views` task after
-- its load, for the table version and view definition it was computed from: the Charts page
-- reads it instead of aggregating the whole table per request.
CREATE TABLE IF NOT EXISTS {schema}.chart_cache (
    view           text             NOT NULL,
    x              text             NOT NULL,
    series         text             NOT NULL,
    value          text             NOT NULL,
    table_version  bigint           NOT NULL,
    definition     text             NOT NULL,  -- md5 of the view's definition
    rows           jsonb            NOT NULL,  -- [[x, series, value], ...]
    seconds        double precision NOT NULL,
    refreshed_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (view, x, series, value)
);
