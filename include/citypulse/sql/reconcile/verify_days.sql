INSERT INTO {schema}.partition_days AS d (dag_id, day, portal_rows, portal_changed)
VALUES %s
ON CONFLICT (dag_id, day) DO UPDATE
SET portal_rows = EXCLUDED.portal_rows, portal_changed = EXCLUDED.portal_changed,
    verified_at = now();
