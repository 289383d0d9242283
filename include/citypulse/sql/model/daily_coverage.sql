-- Per local day: records known and records with a hexagon (from known_counts.sql).
SELECT local_day,
       sum(records)::integer AS records,
       (sum(records) FILTER (WHERE h3_cell IS NOT NULL))::integer AS located
FROM pg_temp.cp_known_counts
GROUP BY local_day
ORDER BY local_day;
