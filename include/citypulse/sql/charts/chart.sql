-- One dashboard chart's data: the view's value summed per x (and series).
SELECT coalesce({x}::text, 'Unknown') AS x,
       coalesce({series}::text, '') AS series,
       sum({value})::double precision AS value
FROM {schema}.{view}
GROUP BY 1, 2;
