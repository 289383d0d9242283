-- Move the dataset's watermark forward (never back: overlapping runs may finish out of order).
INSERT INTO {schema}.watermarks AS w (dag_id, change_column, value, run_id)
VALUES (%(dag_id)s, %(change_column)s, %(value)s, %(run_id)s)
ON CONFLICT (dag_id) DO UPDATE
SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, change_column = EXCLUDED.change_column,
    updated_at = now()
WHERE w.change_column <> EXCLUDED.change_column OR EXCLUDED.value > w.value;
