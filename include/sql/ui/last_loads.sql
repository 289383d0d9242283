-- Per city: the newest successful load and the latest partition audit (pipeline_health).
SELECT city, last_success_at, last_run_id, last_window_end, last_extracted, last_rejected,
       rows_in_table, newest_event_utc, last_audit_at, last_audit_days_checked,
       last_audit_days_differing, last_audit_days_repaired, last_audit_rows_changed
FROM {schema}.pipeline_health;
