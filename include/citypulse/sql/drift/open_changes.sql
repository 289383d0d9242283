-- The dataset's schema changes still open (not yet resolved by a run that no longer saw them).
SELECT id, change, column_name, before, after
FROM {schema}.schema_changes
WHERE dag_id = %(dag_id)s AND resolved_at IS NULL
ORDER BY id;
