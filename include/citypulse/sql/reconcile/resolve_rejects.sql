-- Open rejects of the days [first, last] that no longer stand for a portal record: loaded
-- since (the portal corrected them), or gone from the portal. A reject's key is looked up by
-- the key column's index (typed, then compared as text, as it always was).
UPDATE {schema}.rejects AS r
SET resolved_at = now(),
    resolution = CASE WHEN EXISTS (
        SELECT 1 FROM {schema}.{table} AS t
        WHERE t.{key} = {schema}.cp_try_cast(r.record_key, NULL::{key_type})
          AND t.{key}::text = r.record_key AND t.cp_deleted_at IS NULL
    ) THEN 'loaded after a correction' ELSE 'gone from the portal' END
WHERE r.dag_id = %(dag_id)s AND r.resolved_at IS NULL
  AND r.event_day BETWEEN %(first)s AND %(last)s
  AND (NOT (coalesce(r.record_key, '') = ANY(%(keys)s))
       OR EXISTS (
           SELECT 1 FROM {schema}.{table} AS t
           WHERE t.{key} = {schema}.cp_try_cast(r.record_key, NULL::{key_type})
             AND t.{key}::text = r.record_key AND t.cp_deleted_at IS NULL
       ));
