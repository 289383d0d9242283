-- Register one evaluated model of a retrain run; a retried task updates its own row.
INSERT INTO {schema}.model_runs (
    dag_run_id, city, resolution, model_kind, role, params, train_start, train_end,
    test_start, test_end, label_threshold, metrics, as_of, publication_lag_days
) VALUES (
    %(dag_run_id)s, %(city)s, %(resolution)s, %(model_kind)s, %(role)s, %(params)s,
    %(train_start)s, %(train_end)s, %(test_start)s, %(test_end)s, %(label_threshold)s,
    %(metrics)s, %(as_of)s, %(publication_lag_days)s
)
ON CONFLICT (dag_run_id, city, resolution, model_kind) DO UPDATE SET
    role = EXCLUDED.role,
    params = EXCLUDED.params,
    train_start = EXCLUDED.train_start,
    train_end = EXCLUDED.train_end,
    test_start = EXCLUDED.test_start,
    test_end = EXCLUDED.test_end,
    label_threshold = EXCLUDED.label_threshold,
    metrics = EXCLUDED.metrics,
    as_of = EXCLUDED.as_of,
    publication_lag_days = EXCLUDED.publication_lag_days,
    created_at = now()
RETURNING id;
