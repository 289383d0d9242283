-- The city's published model (its champion) at a resolution, locked until the promotion decision commits.
SELECT id, dag_run_id, model_kind, role, artifact_path, metrics, label_threshold, params
FROM {schema}.model_runs
WHERE city = %(city)s AND resolution = %(resolution)s AND promoted
FOR UPDATE;
