-- Soft-delete the rows of the days [first, last] whose keys the portal no longer holds.
UPDATE {schema}.{table}
SET cp_deleted_at = now()
WHERE {event} >= %(start)s AND {event} < %(end)s
  AND cp_deleted_at IS NULL
  AND NOT ({key}::text = ANY(%(keys)s))
RETURNING {key}::text;
