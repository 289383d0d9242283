-- Crimes per hour of the day and ISO weekday (1 = Monday) of their local time: the source
-- project's hourly heat map.
CREATE OR REPLACE VIEW {schema}.chicago_crime_by_hour_weekday AS
SELECT extract(isodow FROM date)::int AS weekday,
       extract(hour FROM date)::int AS hour,
       count(*) AS crimes
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1, 2;
