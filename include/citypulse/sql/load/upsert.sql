-- Upsert the staged rows on the key. A row whose data did not change is left alone (its
-- lineage too), so a rerun of the same window changes nothing; with a change column, an
-- older version of a row (from a run that read the portal earlier) never overwrites a newer.
-- The version an update replaces goes to the history table when its content changed (not
-- when only the change column moved: a portal re-stamping rows makes no history), and so
-- does a deleted row that comes back. Every CTE reads the rows as they were before.
WITH replaced AS (
    INSERT INTO {schema}.{history} ({history_columns}, valid_from, valid_to, replaced_by_run)
    SELECT {old_columns}, coalesce(t.cp_changed_at, t.cp_loaded_at),
           coalesce(t.cp_deleted_at, now()), %(run_id)s
    FROM {schema}.{table} AS t
    JOIN stage AS s ON s.{key} = t.{key}
    WHERE (({target_content}) IS DISTINCT FROM ({staged_content}) OR t.cp_deleted_at IS NOT NULL)
      AND {staged_not_older}
    RETURNING 1
), upserted AS (
    INSERT INTO {schema}.{table} AS t ({columns}, cp_loaded_at, cp_changed_at)
    SELECT {columns}, now(), now() FROM stage
    ON CONFLICT ({key}) DO UPDATE
    SET {assignments}, cp_loaded_at = EXCLUDED.cp_loaded_at, cp_deleted_at = NULL,
        cp_changed_at = CASE
            WHEN ({target_content}) IS DISTINCT FROM ({excluded_content})
                 OR t.cp_deleted_at IS NOT NULL THEN EXCLUDED.cp_changed_at
            ELSE t.cp_changed_at END
    WHERE (({target_columns}) IS DISTINCT FROM ({excluded_columns})
           OR t.cp_deleted_at IS NOT NULL)
      AND {not_older}
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
       (SELECT count(*) FROM replaced)
FROM upserted;
