-- A schema change the run is the first to see.
INSERT INTO {schema}.schema_changes
    (dag_id, dataset, run_id, change, column_name, before, after, required)
VALUES (%(dag_id)s, %(dataset)s, %(run_id)s, %(change)s, %(column)s, %(before)s, %(after)s,
        %(required)s);
