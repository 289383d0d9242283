-- Open schema changes the run no longer sees: the portal (or the contract) was put right.
UPDATE {schema}.schema_changes
SET resolved_at = now(), resolved_run_id = %(run_id)s
WHERE dag_id = %(dag_id)s AND resolved_at IS NULL AND id = ANY(%(ids)s);
