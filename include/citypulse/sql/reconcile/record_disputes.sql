-- A repair's days whose records disagree with the grouped count; a new gap is reported anew.
INSERT INTO {schema}.partition_disputes AS d (dag_id, day, grouped_rows, record_rows, portal_changed)
VALUES %s
ON CONFLICT (dag_id, day) DO UPDATE
SET reported_at = CASE
        WHEN d.grouped_rows = EXCLUDED.grouped_rows AND d.record_rows = EXCLUDED.record_rows
        THEN d.reported_at
    END,
    grouped_rows = EXCLUDED.grouped_rows, record_rows = EXCLUDED.record_rows,
    portal_changed = EXCLUDED.portal_changed, seen_at = now();
