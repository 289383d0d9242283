SELECT {city} AS city,
       v.{key}::text AS source_key,
       v.event_time::date AS local_day,
       v.h3_r8,
       v.h3_r7,
       v.valid_from,
       v.valid_to,
       v.event_time AS event_time_local
FROM {schema}.{versions} v
