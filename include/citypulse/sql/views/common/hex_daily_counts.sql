-- Incidents per H3 cell (resolution 8, with its resolution-7 parent) per local day.
CREATE OR REPLACE VIEW {schema}.hex_daily_counts AS
SELECT city, h3_r8, h3_r7, event_time_local::date AS local_day, count(*) AS incidents
FROM {schema}.incidents
WHERE h3_r8 IS NOT NULL
GROUP BY city, h3_r8, h3_r7, event_time_local::date;
