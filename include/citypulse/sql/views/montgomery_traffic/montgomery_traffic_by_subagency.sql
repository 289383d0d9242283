-- Stops and charges per police district (subagency).
CREATE OR REPLACE VIEW {schema}.montgomery_traffic_by_subagency AS
SELECT subagency, count(DISTINCT seq_id) AS stops, count(*) AS charges
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY subagency;
