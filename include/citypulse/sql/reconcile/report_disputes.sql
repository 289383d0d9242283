UPDATE {schema}.partition_disputes
SET reported_at = now()
WHERE dag_id = %(dag_id)s AND day = ANY(%(days)s) AND reported_at IS NULL;
