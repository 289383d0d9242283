-- One row per city: the last successful load, totals, and how far the newest event lags now.
CREATE OR REPLACE VIEW {schema}.pipeline_health AS
WITH last_run AS (
    SELECT DISTINCT ON (dag_id)
           dag_id, run_id, finished_at, window_start, window_end, extracted, loaded, rejected
    FROM {schema}.ingest_runs
    WHERE status = 'success'
    ORDER BY dag_id, finished_at DESC
), totals AS (
    SELECT dag_id, count(*) AS runs, sum(loaded) AS rows_loaded, sum(rejected) AS rows_rejected
    FROM {schema}.ingest_runs
    GROUP BY dag_id
), newest AS (
    -- From each city's per-day summary (kept by its loads), not by counting its table.
    SELECT city, max(newest_event_utc) AS newest_event_utc, sum(rows)::bigint AS rows_in_table
    FROM {schema}.city_record_days
    GROUP BY city
), last_audit AS (
    SELECT DISTINCT ON (dag_id)
           dag_id, finished_at, days_checked, days_differing, days_repaired,
           rows_inserted + rows_updated + rows_deleted AS rows_changed,
           outcome, refusal, days_disputed
    FROM {schema}.partition_audits
    ORDER BY dag_id, finished_at DESC
)
SELECT l.dag_id AS city,
       l.finished_at AS last_success_at,
       l.run_id AS last_run_id,
       l.window_start AS last_window_start,
       l.window_end AS last_window_end,
       l.extracted AS last_extracted,
       l.loaded AS last_loaded,
       l.rejected AS last_rejected,
       t.runs,
       t.rows_loaded,
       t.rows_rejected,
       n.rows_in_table,
       n.newest_event_utc,
       now() - n.newest_event_utc AS event_lag,
       a.finished_at AS last_audit_at,
       a.days_checked AS last_audit_days_checked,
       a.days_differing AS last_audit_days_differing,
       a.days_repaired AS last_audit_days_repaired,
       a.rows_changed AS last_audit_rows_changed,
       a.outcome AS last_audit_outcome,        -- complete, or refused (an outage, say): why in
       a.refusal AS last_audit_refusal,
       a.days_disputed AS last_audit_days_disputed  -- grouped count off the day's records
FROM last_run l
JOIN totals t USING (dag_id)
LEFT JOIN newest n ON n.city = l.dag_id
LEFT JOIN last_audit a ON a.dag_id = l.dag_id;
