SELECT day, portal_rows, portal_changed FROM {schema}.partition_days WHERE dag_id = %(dag_id)s;
