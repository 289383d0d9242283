-- A dataset's per-day summaries, kept by the table's own triggers (summary/functions.sql) in
-- the transaction of every write, so readers never count the whole table:
-- {days}: per local day (of event_time) its live rows (not soft-deleted), their newest
-- change and newest event time (UTC): the partition audit's warehouse side and the health
-- page read it. {hex_days}: per local day and H3 cell (resolution 8 with its resolution-7
-- parent) the live rows with a cell: `hex_daily_counts` reads it. A day or cell left with no
-- rows keeps a row of 0 (readers skip those).
CREATE TABLE IF NOT EXISTS {schema}.{days} (
    day              date PRIMARY KEY,
    rows             bigint NOT NULL,
    changed          {change_type},
    newest_event_utc timestamptz
);
CREATE TABLE IF NOT EXISTS {schema}.{hex_days} (
    day       date   NOT NULL,
    h3_r8     text   NOT NULL,
    h3_r7     text,
    incidents bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, h3_r8, h3_r7)
);
