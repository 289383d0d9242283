-- The newest validation report of one run: what every expectation found, passed or not.
-- The run's own (`validate`), not a partition audit's repair; read through to_jsonb so a
-- warehouse whose `stage` column no run has added yet answers too.
SELECT v.passed, v.message, v.report, v.created_at
FROM {schema}.validation_reports AS v
WHERE v.dag_id = %(dag_id)s AND v.run_id = %(run_id)s
  AND coalesce(to_jsonb(v) ->> 'stage', 'validate') = 'validate'
ORDER BY v.created_at DESC, v.id DESC
LIMIT 1;
