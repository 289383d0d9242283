-- Blocks with crimes on three or more distinct days: where trouble repeats.
CREATE OR REPLACE VIEW {schema}.chicago_crime_repeat_blocks AS
SELECT block,
       count(*) AS crimes,
       count(DISTINCT date::date) AS days_with_crime,
       min(date) AS first_seen,
       max(date) AS last_seen
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL AND block IS NOT NULL
GROUP BY block
HAVING count(DISTINCT date::date) >= 3;
