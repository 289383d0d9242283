-- Upsert the staged rows on the key. A row whose data did not change is left alone (its
-- lineage too), so a rerun of the same window changes nothing; with a change column, an
-- older version of a row (from a run that read the portal earlier) never overwrites a newer.
WITH upserted AS (
    INSERT INTO {schema}.{table} AS t ({columns}, event_time_utc, cp_run_id, cp_loaded_at)
    SELECT {columns}, s.event_time AT TIME ZONE %(timezone)s, %(run_id)s, now()
    FROM stage s
    ON CONFLICT ({key}) DO UPDATE
    SET {assignments}, event_time_utc = EXCLUDED.event_time_utc,
        cp_run_id = EXCLUDED.cp_run_id, cp_loaded_at = EXCLUDED.cp_loaded_at,
        cp_deleted_at = NULL
    WHERE (({target_columns}) IS DISTINCT FROM ({excluded_columns})
           OR t.cp_deleted_at IS NOT NULL)
      AND {not_older}
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted;
