-- The `scale` figure's warehouse around the grown table (benchmarks/scale.py fills in the
-- names): what years of daily runs leave behind besides the rows.

-- One successful daily run per day of the history (the audit covers their windows).
INSERT INTO {schema}.ingest_runs (
    dag_id, run_id, window_start, window_end, timezone, extracted, loaded, rejected,
    inserted, updated, unchanged, seconds, status, finished_at
)
SELECT %(dag_id)s, 'scheduled__' || d::date, d, d + interval '1 day', %(timezone)s,
       n, n, 0, n, 0, 0, 1.0, 'success', d + interval '1 day 2 hours'
FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS d,
     LATERAL (SELECT 8000 AS n) AS counts;

-- One record in 20 was edited once: its earlier version in the history.
INSERT INTO {history} ({columns}, valid_from, valid_to, replaced_by_run)
SELECT {current}, t.cp_loaded_at - interval '1 day', t.cp_loaded_at, 'bench_scale_edit'
FROM {table} AS t
WHERE t.{key} %% 20 = 0;

-- Open rejects of five recent days, whose records never loaded.
INSERT INTO {schema}.rejects (
    dag_id, record_key, reason, record, record_hash, first_run_id, window_start, window_end,
    event_day
)
SELECT %(dag_id)s, 'bench-reject-' || i, 'created_date is not a timestamp (bench)',
       jsonb_build_object('unique_key', 'bench-reject-' || i), md5('bench-reject-' || i),
       'bench_scale_rejects', %(last_day)s::date - i, %(last_day)s::date - i + 1,
       %(last_day)s::date - i
FROM generate_series(1, 5) AS i;

-- A partition audit a week ago, so the health page has one to show.
INSERT INTO {schema}.partition_audits (
    dag_id, run_id, days_checked, days_differing, days_repaired, rows_inserted, rows_updated,
    rows_deleted, rejects_resolved, seconds, repaired, finished_at
) VALUES (%(dag_id)s, 'bench_scale_audit', 0, 0, 0, 0, 0, 0, 0, 1.0, '[]',
          %(last_day)s::date - 6);

-- A published forecast of the 7 days after the data (resolution 8, every cell seen in the
-- last week), so the map has one to show beside last week's counts.
INSERT INTO {schema}.model_runs (
    id, dag_run_id, city, resolution, model_kind, role, params, train_start, train_end,
    test_start, test_end, label_threshold, metrics, promoted, promoted_at
) VALUES (
    1, 'bench_scale_retrain', %(dag_id)s, 8, 'seasonal_naive', 'baseline', '{{}}',
    %(last_day)s::date - 90, %(last_day)s::date - 29, %(last_day)s::date - 28,
    %(last_day)s::date, 3, '{{}}', true, now()
);
INSERT INTO {schema}.hotspot_predictions (
    city, h3_cell, resolution, day, probability, predicted_hotspot, model_run_id,
    features_as_of
)
SELECT %(dag_id)s, cells.h3_r8, 8, %(last_day)s::date + k, 0.5, k %% 2 = 0, 1,
       %(last_day)s::date
FROM (SELECT DISTINCT h3_r8 FROM {table}
      WHERE event_time >= %(last_day)s::date - 6 AND h3_r8 IS NOT NULL) AS cells
CROSS JOIN generate_series(1, 7) AS k;

-- The daily run's validation report (the run page's Validation tab).
INSERT INTO {schema}.validation_reports (dag_id, run_id, passed, message, report, stage)
VALUES (%(dag_id)s, %(run_id)s, true, NULL, '{{"expectations": []}}', 'validate');
