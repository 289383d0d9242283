-- Requests by ISO weekday (1 = Monday) and local hour of creation.
CREATE OR REPLACE VIEW {schema}.nyc_311_requests_by_hour_weekday AS
SELECT extract(isodow FROM created_date)::int AS weekday,
       extract(hour FROM created_date)::int AS hour,
       count(*) AS requests
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1, 2;
