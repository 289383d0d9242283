-- How fresh one city's data is: its successful loads (whole local days) and newest event
-- before %(before)s (the as-of day's local midnight: later events are not known yet).
SELECT max(r.finished_at) AS last_success_at,
       min(r.window_start)::date AS first_loaded_day,
       (max(r.window_end) - interval '1 microsecond')::date AS last_loaded_day,
       (SELECT max(i.event_time_local) FROM {schema}.incidents i
        WHERE i.city = %(city)s AND i.event_time_local < %(before)s) AS newest_event_local
FROM {schema}.ingest_runs r
WHERE r.dag_id = %(city)s AND r.status = 'success';
