-- A sample of the raw records one run quarantined first, with their reasons.
SELECT record_key, reason, record
FROM {schema}.rejects
WHERE dag_id = %(dag_id)s AND first_run_id = %(run_id)s
ORDER BY id
LIMIT %(limit)s;
