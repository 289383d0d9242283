SELECT {city} AS city, d.day, d.rows, d.newest_event_utc
FROM {schema}.{days} AS d
WHERE d.rows > 0
