INSERT INTO {schema}.rejects (
    dag_id, record_key, reason, record, record_hash, first_run_id, window_start, window_end,
    event_day
) VALUES %s
ON CONFLICT (dag_id, record_hash) DO NOTHING;
