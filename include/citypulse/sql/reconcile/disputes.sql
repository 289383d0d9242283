-- The days a repair found disputed: their grouped count against their records.
SELECT day, grouped_rows, record_rows, portal_changed, reported_at IS NOT NULL
FROM {schema}.partition_disputes
WHERE dag_id = %(dag_id)s;
