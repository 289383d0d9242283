-- Crimes by local hour of day, with the hour's share of all crimes.
CREATE OR REPLACE VIEW {schema}.chicago_crime_hourly_pattern AS
SELECT extract(hour FROM date)::int AS hour,
       count(*) AS crimes,
       round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1;
