-- Charges by violation type (Citation, Warning, ESERO, SERO).
CREATE OR REPLACE VIEW {schema}.montgomery_traffic_by_violation_type AS
SELECT violation_type, count(*) AS charges,
       round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY violation_type;
