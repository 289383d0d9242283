-- Crimes, arrests and arrest rate per police district.
CREATE OR REPLACE VIEW {schema}.chicago_crime_by_district AS
SELECT district,
       count(*) AS crimes,
       count(*) FILTER (WHERE arrest) AS arrests,
       round(avg(CASE WHEN arrest THEN 1.0 ELSE 0.0 END), 4) AS arrest_rate
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY district;
