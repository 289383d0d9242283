-- The published model's forecast per hexagon and day (after replace_predictions.sql).
INSERT INTO {schema}.hotspot_predictions (
    city, h3_cell, resolution, day, probability, predicted_hotspot, model_run_id, features_as_of,
    expected_count
) VALUES %s;
