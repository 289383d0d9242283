INSERT INTO {schema}.ingest_runs (
    dag_id, run_id, window_start, window_end, timezone, extracted, loaded, rejected,
    inserted, updated, unchanged, seconds, validation
) VALUES (
    %(dag_id)s, %(run_id)s, %(window_start)s, %(window_end)s, %(timezone)s, %(extracted)s,
    %(loaded)s, %(rejected)s, %(inserted)s, %(updated)s, %(unchanged)s, %(seconds)s,
    %(validation)s
)
RETURNING id;
