-- Offenses per precinct over the last 7 local days (today included), by crime-against class.
CREATE OR REPLACE VIEW {schema}.seattle_crime_offenses_by_precinct_7d AS
SELECT coalesce(precinct, 'Unknown') AS precinct,
       nibrs_crime_against_category,
       count(*) AS offenses
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
  AND report_date_time >= (now() AT TIME ZONE 'America/Los_Angeles')::date - 6
GROUP BY 1, 2;
