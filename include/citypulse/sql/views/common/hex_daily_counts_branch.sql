SELECT {city} AS city, h.h3_r8, h.h3_r7, h.day AS local_day, h.incidents
FROM {schema}.{hex_days} AS h
WHERE h.incidents > 0
