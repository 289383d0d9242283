-- Every city's gate figures in a retrain run.
SELECT city, resolution, as_of, passed, reason, figures
FROM {schema}.retrain_gates
WHERE dag_run_id = %(dag_run_id)s
ORDER BY city, resolution;
