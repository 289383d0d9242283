SELECT {city} AS city,
       t.{key}::text AS source_key,
       t.event_time AS event_time_local,
       t.event_time_utc,
       t.{category}::text AS category,
       {subcategory} AS subcategory,
       {district} AS district,
       {latitude}::double precision AS latitude,
       {longitude}::double precision AS longitude,
       t.h3_r8,
       t.h3_r7
FROM {schema}.{table} t
WHERE t.cp_deleted_at IS NULL
