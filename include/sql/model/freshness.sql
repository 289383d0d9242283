-- How fresh one city's data is: its successful loads (whole local days) and newest event.
SELECT max(r.finished_at) AS last_success_at,
       min(r.window_start)::date AS first_loaded_day,
       (max(r.window_end) - interval '1 microsecond')::date AS last_loaded_day,
       (SELECT max(i.event_time_local) FROM {schema}.incidents i WHERE i.city = %(city)s)
           AS newest_event_local
FROM {schema}.ingest_runs r
WHERE r.dag_id = %(city)s AND r.status = 'success';
