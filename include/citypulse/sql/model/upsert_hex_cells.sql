-- Hexagon shapes never change: insert the ones not seen before.
INSERT INTO {schema}.hex_cells (h3_cell, resolution, center_lat, center_lon, boundary_geojson)
VALUES %s
ON CONFLICT (h3_cell) DO NOTHING;
