-- One city's gate figures in a run; a retried task replaces its row.
INSERT INTO {schema}.retrain_gates (dag_run_id, city, resolution, as_of, passed, reason, figures)
VALUES (%(dag_run_id)s, %(city)s, %(resolution)s, %(as_of)s, %(passed)s, %(reason)s, %(figures)s)
ON CONFLICT (dag_run_id, city, resolution) DO UPDATE SET
    as_of = EXCLUDED.as_of,
    passed = EXCLUDED.passed,
    reason = EXCLUDED.reason,
    figures = EXCLUDED.figures,
    created_at = now();
