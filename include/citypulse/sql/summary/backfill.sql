-- The summaries of a table that had none (a warehouse made before them): counted once from
-- the table, in the transaction that creates them and their triggers (the triggers' lock
-- waits for every write in flight, so no row is missed or counted twice).
INSERT INTO {schema}.{days} (day, rows, changed, newest_event_utc)
SELECT event_time::date, count(*), max({change}), max(event_time_utc)
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1;
INSERT INTO {schema}.{hex_days} (day, h3_r8, h3_r7, incidents)
SELECT event_time::date, h3_r8, h3_r7, count(*)
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL AND h3_r8 IS NOT NULL
GROUP BY 1, 2, 3;
