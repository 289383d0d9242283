-- Per local day of the event column, what the warehouse accounts for: rows not deleted,
-- plus open rejects whose key is not stored (a record the portal holds that could not load),
-- and the newest change among the rows. Compared day by day with the portal's counts.
-- All days, or the days first .. last (a repair's days, counted again). The rows come from
-- the table's per-day summary (kept by its writes: summary/functions.sql), not the table; a
-- reject's key is looked up by the key column's index (typed, then compared as text).
WITH stored AS (
    SELECT day, rows AS n, changed
    FROM {schema}.{days}
    WHERE rows > 0
      AND (%(first)s::date IS NULL OR day BETWEEN %(first)s AND %(last)s)
), rejected AS (
    SELECT r.event_day AS day, count(DISTINCT r.record_key) AS n
    FROM {schema}.rejects AS r
    WHERE r.dag_id = %(dag_id)s AND r.resolved_at IS NULL AND r.event_day IS NOT NULL
      AND (%(first)s::date IS NULL OR r.event_day BETWEEN %(first)s AND %(last)s)
      AND NOT EXISTS (
          SELECT 1 FROM {schema}.{table} AS t
          WHERE t.{key} = {schema}.cp_try_cast(r.record_key, NULL::{key_type})
            AND t.{key}::text = r.record_key AND t.cp_deleted_at IS NULL
      )
    GROUP BY 1
)
SELECT coalesce(s.day, r.day) AS day,
       coalesce(s.n, 0) + coalesce(r.n, 0) AS n,
       s.changed
FROM stored AS s
FULL JOIN rejected AS r ON r.day = s.day;
