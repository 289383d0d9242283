-- Open versus closed requests per agency, and how long closed ones took.
CREATE OR REPLACE VIEW {schema}.nyc_311_open_vs_closed AS
SELECT agency,
       count(*) FILTER (WHERE status = 'Closed') AS closed,
       count(*) FILTER (WHERE status IS DISTINCT FROM 'Closed') AS open,
       round(avg(extract(epoch FROM closed_date - created_date) / 3600)
             FILTER (WHERE status = 'Closed' AND closed_date >= created_date)::numeric, 2)
           AS avg_hours_to_close
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY agency;
