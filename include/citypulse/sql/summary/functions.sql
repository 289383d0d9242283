-- The trigger functions that keep a dataset's summaries ({days}, {hex_days}: summary/
-- tables.sql) exact, each in the transaction of the write it follows, from the statement's
-- transition tables: only the rows written are read, never the table's other days.
-- Counts move by the rows that joined or left the live set (a soft delete is an update that
-- sets cp_deleted_at). The newest change and event time of a day only grow with rows added;
-- a day that lost the row holding one is read again (that day alone, by the event_time
-- index). Each write that changed rows also counts in `table_versions` (what cached answers
-- computed from the table are checked against).

CREATE OR REPLACE FUNCTION {schema}.{insert_function}() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        INSERT INTO {schema}.table_versions AS v (table_name, version)
        VALUES ({table_name}, 1)
        ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1;
    END IF;
    INSERT INTO {schema}.{days} AS s (day, rows, changed, newest_event_utc)
    SELECT event_time::date, count(*), max({change}), max(event_time_utc)
    FROM new_rows
    WHERE cp_deleted_at IS NULL
    GROUP BY 1
    ON CONFLICT (day) DO UPDATE
    SET rows = s.rows + EXCLUDED.rows,
        changed = greatest(s.changed, EXCLUDED.changed),
        newest_event_utc = greatest(s.newest_event_utc, EXCLUDED.newest_event_utc);
    INSERT INTO {schema}.{hex_days} AS s (day, h3_r8, h3_r7, incidents)
    SELECT event_time::date, h3_r8, h3_r7, count(*)
    FROM new_rows
    WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (day, h3_r8, h3_r7) DO UPDATE SET incidents = s.incidents + EXCLUDED.incidents;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION {schema}.{update_function}() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        INSERT INTO {schema}.table_versions AS v (table_name, version)
        VALUES ({table_name}, 1)
        ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1;
    END IF;
    INSERT INTO {schema}.{days} AS s (day, rows, changed, newest_event_utc)
    SELECT day, sum(n), max(changed), max(newest)
    FROM (
        SELECT event_time::date AS day, 1 AS n, {change} AS changed, event_time_utc AS newest
        FROM new_rows WHERE cp_deleted_at IS NULL
        UNION ALL
        SELECT event_time::date, -1, NULL, NULL
        FROM old_rows WHERE cp_deleted_at IS NULL
    ) AS delta
    GROUP BY day
    ON CONFLICT (day) DO UPDATE
    SET rows = s.rows + EXCLUDED.rows,
        changed = greatest(s.changed, EXCLUDED.changed),
        newest_event_utc = greatest(s.newest_event_utc, EXCLUDED.newest_event_utc);
    UPDATE {schema}.{days} AS s
    SET changed = m.changed, newest_event_utc = m.newest
    FROM (
        SELECT d.day, x.changed, x.newest
        FROM (
            SELECT DISTINCT o.event_time::date AS day
            FROM old_rows AS o
            JOIN {schema}.{days} AS k ON k.day = o.event_time::date
            WHERE o.cp_deleted_at IS NULL
              AND ({old_change} = k.changed OR o.event_time_utc = k.newest_event_utc)
        ) AS d
        CROSS JOIN LATERAL (
            SELECT max({row_change}) AS changed, max(t.event_time_utc) AS newest
            FROM {schema}.{table} AS t
            WHERE t.cp_deleted_at IS NULL
              AND t.event_time >= d.day AND t.event_time < d.day + 1
        ) AS x
    ) AS m
    WHERE s.day = m.day;
    INSERT INTO {schema}.{hex_days} AS s (day, h3_r8, h3_r7, incidents)
    SELECT day, h3_r8, h3_r7, sum(n)
    FROM (
        SELECT event_time::date AS day, h3_r8, h3_r7, 1 AS n
        FROM new_rows WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL
        UNION ALL
        SELECT event_time::date, h3_r8, h3_r7, -1
        FROM old_rows WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL
    ) AS delta
    GROUP BY 1, 2, 3
    HAVING sum(n) <> 0
    ON CONFLICT (day, h3_r8, h3_r7) DO UPDATE SET incidents = s.incidents + EXCLUDED.incidents;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION {schema}.{delete_function}() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows) THEN
        INSERT INTO {schema}.table_versions AS v (table_name, version)
        VALUES ({table_name}, 1)
        ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1;
    END IF;
    UPDATE {schema}.{days} AS s
    SET rows = s.rows - gone.n
    FROM (
        SELECT event_time::date AS day, count(*) AS n
        FROM old_rows WHERE cp_deleted_at IS NULL
        GROUP BY 1
    ) AS gone
    WHERE s.day = gone.day;
    UPDATE {schema}.{days} AS s
    SET changed = m.changed, newest_event_utc = m.newest
    FROM (
        SELECT d.day, x.changed, x.newest
        FROM (
            SELECT DISTINCT o.event_time::date AS day
            FROM old_rows AS o
            JOIN {schema}.{days} AS k ON k.day = o.event_time::date
            WHERE o.cp_deleted_at IS NULL
              AND ({old_change} = k.changed OR o.event_time_utc = k.newest_event_utc)
        ) AS d
        CROSS JOIN LATERAL (
            SELECT max({row_change}) AS changed, max(t.event_time_utc) AS newest
            FROM {schema}.{table} AS t
            WHERE t.cp_deleted_at IS NULL
              AND t.event_time >= d.day AND t.event_time < d.day + 1
        ) AS x
    ) AS m
    WHERE s.day = m.day;
    UPDATE {schema}.{hex_days} AS s
    SET incidents = s.incidents - gone.n
    FROM (
        SELECT event_time::date AS day, h3_r8, h3_r7, count(*) AS n
        FROM old_rows WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL
        GROUP BY 1, 2, 3
    ) AS gone
    WHERE s.day = gone.day AND s.h3_r8 = gone.h3_r8
      AND s.h3_r7 IS NOT DISTINCT FROM gone.h3_r7;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION {schema}.{truncate_function}() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    INSERT INTO {schema}.table_versions AS v (table_name, version)
    VALUES ({table_name}, 1)
    ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1;
    DELETE FROM {schema}.{days};
    DELETE FROM {schema}.{hex_days};
    RETURN NULL;
END
$function$;
