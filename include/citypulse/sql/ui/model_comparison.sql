-- Every model of the retrain that produced a forecast, for the same city and resolution:
-- the published one beside its baselines, reference and candidates.
SELECT m.id, m.model_kind, m.role, m.metrics, m.decision, m.promoted, m.test_start,
       m.test_end, m.id = %(model_run_id)s AS published
FROM {schema}.model_runs AS m
JOIN {schema}.model_runs AS p ON p.id = %(model_run_id)s
WHERE m.dag_run_id = p.dag_run_id AND m.city = p.city AND m.resolution = p.resolution
ORDER BY m.role, m.model_kind;
