INSERT INTO {schema}.ingest_runs (
    dag_id, run_id, window_start, window_end, timezone, extracted, loaded, rejected,
    inserted, updated, unchanged, seconds, validation, window_rows, change_rows, watermark,
    portal_rows
) VALUES (
    %(dag_id)s, %(run_id)s, %(window_start)s, %(window_end)s, %(timezone)s, %(extracted)s,
    %(loaded)s, %(rejected)s, %(inserted)s, %(updated)s, %(unchanged)s, %(seconds)s,
    %(validation)s, %(window_rows)s, %(change_rows)s, %(watermark)s, %(portal_rows)s
)
RETURNING id;
