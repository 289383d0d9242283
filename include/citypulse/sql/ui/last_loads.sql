-- Per city: the newest successful load and the latest partition audit (pipeline_health), and
-- how far the loads reach: the latest end of any successful window (the last run to finish
-- may be a backfill of an older day); a refused audit says why, and how many days the portal
-- disputes.
SELECT h.city, h.last_success_at, h.last_run_id,
       (SELECT max(r.window_end) FROM {schema}.ingest_runs AS r
        WHERE r.dag_id = h.city AND r.status = 'success') AS loaded_through,
       h.last_extracted, h.last_rejected, h.rows_in_table, h.newest_event_utc, h.last_audit_at,
       h.last_audit_days_checked, h.last_audit_days_differing, h.last_audit_days_repaired,
       h.last_audit_rows_changed,
       -- Through to_jsonb: a pipeline_health built before these columns (a warehouse not yet
       -- rebuilt by build_views since the upgrade) still answers, with NULLs.
       to_jsonb(h) ->> 'last_audit_outcome', to_jsonb(h) ->> 'last_audit_refusal',
       (to_jsonb(h) ->> 'last_audit_days_disputed')::int
FROM {schema}.pipeline_health AS h;
