-- The newest validation report of one run: what every expectation found, passed or not.
SELECT passed, message, report, created_at
FROM {schema}.validation_reports
WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s
ORDER BY created_at DESC, id DESC
LIMIT 1;
