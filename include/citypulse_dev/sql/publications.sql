-- Per city: the published forecast's model, its role (candidate or baseline) and its hexagons.
SELECT p.city, p.model_kind, p.role, count(DISTINCT f.h3_cell) AS hexagons
FROM {schema}.hotspot_publication p
LEFT JOIN {schema}.hotspot_predictions f
       ON f.city = p.city AND f.model_run_id = p.model_run_id
GROUP BY p.city, p.model_kind, p.role
ORDER BY p.city;
