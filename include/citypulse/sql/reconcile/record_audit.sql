INSERT INTO {schema}.partition_audits (
    dag_id, run_id, days_checked, days_differing, days_repaired, rows_inserted, rows_updated,
    rows_deleted, rejects_resolved, seconds, repaired, outcome, refusal, days_disputed, disputed
) VALUES (
    %(dag_id)s, %(run_id)s, %(days_checked)s, %(days_differing)s, %(days_repaired)s,
    %(rows_inserted)s, %(rows_updated)s, %(rows_deleted)s, %(rejects_resolved)s, %(seconds)s,
    %(repaired)s, %(outcome)s, %(refusal)s, %(days_disputed)s, %(disputed)s
)
RETURNING id;
