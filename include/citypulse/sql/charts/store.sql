-- One chart's data, computed from the table at `table_version` (charts/cached.sql reads it).
INSERT INTO {schema}.chart_cache AS c (
    view, x, series, value, table_version, definition, rows, seconds
) VALUES (
    %(view)s, %(x)s, %(series)s, %(value)s, %(table_version)s,
    md5(pg_get_viewdef(to_regclass(%(qualified_view)s))), %(rows)s, %(seconds)s
)
ON CONFLICT (view, x, series, value) DO UPDATE
SET table_version = EXCLUDED.table_version, definition = EXCLUDED.definition,
    rows = EXCLUDED.rows, seconds = EXCLUDED.seconds, refreshed_at = now();
