-- The audit row of one run (the newest, should the run have loaded twice).
SELECT window_start, window_end, timezone, portal_rows, extracted, loaded, inserted, updated,
       unchanged, rejected, seconds, finished_at
FROM {schema}.ingest_runs
WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s
ORDER BY finished_at DESC
LIMIT 1;
