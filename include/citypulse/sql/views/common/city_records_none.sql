-- No contract at all: the view keeps its columns, with no rows.
SELECT NULL::text AS city,
       NULL::text AS source_key,
       NULL::timestamp AS event_time_local,
       NULL::timestamptz AS event_time_utc
WHERE false
