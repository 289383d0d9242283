-- The local days the warehouse holds: those of every successful load's window. The audit
-- compares these and only these with the portal (days never loaded are a backfill's).
SELECT DISTINCT day::date
FROM {schema}.ingest_runs AS r,
     generate_series(r.window_start::date, (r.window_end - interval '1 microsecond')::date,
                     interval '1 day') AS day
WHERE r.dag_id = %(dag_id)s AND r.status = 'success';
