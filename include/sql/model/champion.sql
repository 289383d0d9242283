-- The city's current champion at a resolution, locked until the promotion decision commits.
SELECT id, dag_run_id, model_kind, artifact_path, metrics
FROM {schema}.model_runs
WHERE city = %(city)s AND resolution = %(resolution)s AND promoted
FOR UPDATE;
