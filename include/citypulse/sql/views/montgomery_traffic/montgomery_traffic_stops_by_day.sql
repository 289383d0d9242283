-- Stops (distinct seq_id) and charges (rows) per local day.
CREATE OR REPLACE VIEW {schema}.montgomery_traffic_stops_by_day AS
SELECT date_of_stop::date AS day,
       count(DISTINCT seq_id) AS stops,
       count(*) AS charges
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1;
