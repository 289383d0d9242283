-- The city's published forecast: every hexagon-day of its newest model run with predictions.
WITH latest AS (
    SELECT model_run_id
    FROM {schema}.hotspot_predictions
    WHERE city = %(city)s
    ORDER BY created_at DESC, model_run_id DESC
    LIMIT 1
)
SELECT p.day, p.h3_cell, p.resolution, p.probability, p.predicted_hotspot, p.features_as_of,
       p.model_run_id
FROM {schema}.hotspot_predictions AS p
JOIN latest USING (model_run_id)
WHERE p.city = %(city)s
ORDER BY p.day, p.h3_cell;
