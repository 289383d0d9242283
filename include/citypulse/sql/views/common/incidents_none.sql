-- No contract feeds `incidents` (none names coordinates and an `incidents:` mapping): the
-- view keeps its columns, with no rows.
SELECT NULL::text AS city,
       NULL::text AS source_key,
       NULL::timestamp AS event_time_local,
       NULL::timestamptz AS event_time_utc,
       NULL::text AS category,
       NULL::text AS subcategory,
       NULL::text AS district,
       NULL::double precision AS latitude,
       NULL::double precision AS longitude,
       NULL::text AS h3_r8,
       NULL::text AS h3_r7
WHERE false
