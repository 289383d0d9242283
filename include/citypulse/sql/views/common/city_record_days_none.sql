-- No contract at all: the view keeps its columns, with no rows.
SELECT NULL::text AS city,
       NULL::date AS day,
       NULL::bigint AS rows,
       NULL::timestamptz AS newest_event_utc
WHERE false
