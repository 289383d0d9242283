INSERT INTO {schema}.validation_reports (dag_id, run_id, passed, message, report, stage)
VALUES (%(dag_id)s, %(run_id)s, %(passed)s, %(message)s, %(report)s, %(stage)s);
