-- Every city's open schema changes (the portal's columns against its contract), oldest first.
SELECT dag_id, change, column_name, before, after, required, detected_at, run_id
FROM {schema}.schema_changes
WHERE resolved_at IS NULL
ORDER BY dag_id, id;
