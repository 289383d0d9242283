-- Per city: the newest successful load and the latest partition audit (pipeline_health), and
-- how far the loads reach: the latest end of any successful window (the last run to finish
-- may be a backfill of an older day).
SELECT h.city, h.last_success_at, h.last_run_id,
       (SELECT max(r.window_end) FROM {schema}.ingest_runs AS r
        WHERE r.dag_id = h.city AND r.status = 'success') AS loaded_through,
       h.last_extracted, h.last_rejected, h.rows_in_table, h.newest_event_utc, h.last_audit_at,
       h.last_audit_days_checked, h.last_audit_days_differing, h.last_audit_days_repaired,
       h.last_audit_rows_changed
FROM {schema}.pipeline_health AS h;
