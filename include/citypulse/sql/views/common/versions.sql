-- Every version of every row: the history's and the current one, each with the span it was
-- current. What a record looked like on a date:
--   SELECT * FROM {versions} WHERE <key> = ... AND valid_from <= d AND d < valid_to;
CREATE OR REPLACE VIEW {schema}.{versions} AS
SELECT {columns}, h.valid_from, h.valid_to, h.replaced_by_run
FROM {schema}.{history} AS h
UNION ALL
SELECT {current_columns}, coalesce(t.cp_changed_at, t.cp_loaded_at),
       coalesce(t.cp_deleted_at, 'infinity'::timestamptz), NULL::text
FROM {schema}.{table} AS t;
