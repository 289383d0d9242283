SELECT {city} AS city,
       t.{key}::text AS source_key,
       t.event_time AS event_time_local,
       t.event_time_utc
FROM {schema}.{table} t
WHERE t.cp_deleted_at IS NULL
