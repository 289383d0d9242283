-- The champion's forecast per hexagon and day; a rerun replaces the rows it wrote before.
INSERT INTO {schema}.hotspot_predictions (
    city, h3_cell, resolution, day, probability, predicted_hotspot, model_run_id, features_as_of
) VALUES %s
ON CONFLICT (city, resolution, day, h3_cell) DO UPDATE SET
    probability = EXCLUDED.probability,
    predicted_hotspot = EXCLUDED.predicted_hotspot,
    model_run_id = EXCLUDED.model_run_id,
    features_as_of = EXCLUDED.features_as_of,
    created_at = now();
