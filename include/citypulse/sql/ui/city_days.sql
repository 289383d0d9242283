-- One city's local days first_day .. last_day: rows stored (not deleted), open rejects whose
-- event falls on the day, and whether a successful load's window covered the whole day.
WITH days AS (
    SELECT d::date AS day
    FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS d
), stored AS (
    SELECT day, rows
    FROM {schema}.city_record_days
    WHERE city = %(dag_id)s AND day BETWEEN %(first_day)s::date AND %(last_day)s::date
), rejected AS (
    SELECT event_day AS day, count(*) AS rejects
    FROM {schema}.rejects
    WHERE dag_id = %(dag_id)s AND resolved_at IS NULL
      AND event_day BETWEEN %(first_day)s::date AND %(last_day)s::date
    GROUP BY 1
), loaded AS (
    SELECT DISTINCT d.day
    FROM days AS d
    JOIN {schema}.ingest_runs AS r
      ON r.dag_id = %(dag_id)s AND r.status = 'success'
     AND r.window_start <= d.day AND r.window_end >= d.day + 1
)
SELECT d.day, coalesce(s.rows, 0), coalesce(j.rejects, 0), l.day IS NOT NULL
FROM days AS d
LEFT JOIN stored AS s USING (day)
LEFT JOIN rejected AS j USING (day)
LEFT JOIN loaded AS l USING (day)
ORDER BY d.day;
