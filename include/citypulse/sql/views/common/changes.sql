-- Each change of a row's content, newest first: when, by which run, which columns, and their
-- values before and after. `WHERE run_id = '...'` says what a run changed.
CREATE OR REPLACE VIEW {schema}.{changes} AS
WITH versions AS (
    SELECT h.{key} AS record_key, to_jsonb(h) - {lineage} AS data, h.valid_from,
           h.valid_to AS changed_at, h.replaced_by_run AS run_id
    FROM {schema}.{history} AS h
    UNION ALL
    SELECT t.{key}, to_jsonb(t) - {lineage}, coalesce(t.cp_changed_at, t.cp_loaded_at),
           NULL, NULL
    FROM {schema}.{table} AS t
    WHERE EXISTS (SELECT 1 FROM {schema}.{history} AS h WHERE h.{key} = t.{key})
), successive AS (
    SELECT record_key, data, changed_at, run_id,
           lead(data) OVER (PARTITION BY record_key ORDER BY valid_from, changed_at) AS next
    FROM versions
)
SELECT record_key,
       changed_at,
       run_id,
       ARRAY(SELECT k FROM jsonb_object_keys(data || next) AS k
             WHERE data -> k IS DISTINCT FROM next -> k ORDER BY k) AS changed_columns,
       (SELECT jsonb_object_agg(k, data -> k) FROM jsonb_object_keys(data || next) AS k
        WHERE data -> k IS DISTINCT FROM next -> k) AS before,
       (SELECT jsonb_object_agg(k, next -> k) FROM jsonb_object_keys(data || next) AS k
        WHERE data -> k IS DISTINCT FROM next -> k) AS after
FROM successive
WHERE changed_at IS NOT NULL;
