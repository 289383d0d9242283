-- Race and gender of drivers stopped, counting each stop once.
CREATE OR REPLACE VIEW {schema}.montgomery_traffic_driver_demographics AS
WITH stops AS (
    SELECT DISTINCT ON (seq_id) seq_id, race, gender
    FROM {schema}.{table}
    WHERE cp_deleted_at IS NULL
    ORDER BY seq_id, row_id
)
SELECT race, gender, count(*) AS stops,
       round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share
FROM stops
GROUP BY race, gender;
