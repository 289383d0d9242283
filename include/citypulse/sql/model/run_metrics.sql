-- Every model a retrain run evaluated, with its metrics, per city.
SELECT city, model_kind, role, metrics, promoted, decision, id, as_of, train_start, train_end,
       test_start, test_end, label_threshold, publication_lag_days, resolution
FROM {schema}.model_runs
WHERE dag_run_id = %(dag_run_id)s
ORDER BY city, CASE role WHEN 'baseline' THEN 0 WHEN 'reference' THEN 1 ELSE 2 END, model_kind;
