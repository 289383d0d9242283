-- Upsert the staged rows on the key. A row whose data did not change is left alone (its
-- lineage too), so a rerun of the same window changes nothing; with a change column, an
-- older version of a row (from a run that read the portal earlier) never overwrites a newer.
WITH upserted AS (
    INSERT INTO {schema}.{table} AS t ({columns}, cp_loaded_at)
    SELECT {columns}, now() FROM stage
    ON CONFLICT ({key}) DO UPDATE
    SET {assignments}, cp_loaded_at = EXCLUDED.cp_loaded_at, cp_deleted_at = NULL
    WHERE (({target_columns}) IS DISTINCT FROM ({excluded_columns})
           OR t.cp_deleted_at IS NOT NULL)
      AND {not_older}
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted;
