-- No contract feeds `incidents`: its versions view keeps its columns, with no rows.
SELECT NULL::text AS city,
       NULL::text AS source_key,
       NULL::date AS local_day,
       NULL::text AS h3_r8,
       NULL::text AS h3_r7,
       NULL::timestamptz AS valid_from,
       NULL::timestamptz AS valid_to,
       NULL::timestamp AS event_time_local
WHERE false
