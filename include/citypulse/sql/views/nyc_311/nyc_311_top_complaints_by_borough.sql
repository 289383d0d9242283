-- The ten most frequent complaint types in each borough, with their share of the borough.
CREATE OR REPLACE VIEW {schema}.nyc_311_top_complaints_by_borough AS
WITH counts AS (
    SELECT coalesce(borough, 'Unspecified') AS borough, complaint_type, count(*) AS requests
    FROM {schema}.{table}
    WHERE cp_deleted_at IS NULL
    GROUP BY 1, 2
), ranked AS (
    SELECT borough, complaint_type, requests,
           round(requests::numeric / sum(requests) OVER (PARTITION BY borough), 4) AS share,
           rank() OVER (PARTITION BY borough ORDER BY requests DESC, complaint_type) AS rank
    FROM counts
)
SELECT borough, rank, complaint_type, requests, share FROM ranked WHERE rank <= 10;
