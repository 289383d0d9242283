-- Days that agree again are disputed no more.
DELETE FROM {schema}.partition_disputes WHERE dag_id = %(dag_id)s AND day = ANY(%(days)s);
