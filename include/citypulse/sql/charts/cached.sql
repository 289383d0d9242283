-- One chart's cached data, if it was computed from the table as it is now (its version) and
-- from the view as it is defined now.
SELECT c.rows
FROM {schema}.chart_cache AS c
LEFT JOIN {schema}.table_versions AS v ON v.table_name = %(table)s
WHERE c.view = %(view)s AND c.x = %(x)s AND c.series = %(series)s AND c.value = %(value)s
  AND c.table_version = coalesce(v.version, 0)
  AND c.definition = md5(pg_get_viewdef(to_regclass(%(qualified_view)s)));
