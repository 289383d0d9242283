-- Records per (local day, hexagon) of one city as the warehouse knew them at %(known_at)s, into
-- a temporary table the feature and coverage queries read (dropped at commit).
-- Each record counts in the version current at that instant; a record first loaded later
-- (a late arrival or a backfill: the warehouse holds no earlier view of it) counts in its
-- first version, so an edit, a withdrawn coordinate or a deletion after the instant changes
-- nothing. A record deleted before the instant does not count. `h3_cell` is NULL for a
-- record without coordinates (it counts for coverage, not for features).
-- Versions are picked only for the records with a version on the days asked for (found by
-- the event time's index, kept apart and analysed so the planner hashes the join): no other
-- record can count on them.
DROP TABLE IF EXISTS pg_temp.cp_known_keys;
CREATE TEMPORARY TABLE cp_known_keys ON COMMIT DROP AS
SELECT DISTINCT source_key
FROM {schema}.incident_versions
WHERE city = %(city)s
  AND event_time_local >= %(first_day)s::date
  AND event_time_local < %(last_observed)s::date + 1;
ANALYZE pg_temp.cp_known_keys;
DROP TABLE IF EXISTS pg_temp.cp_known_counts;
CREATE TEMPORARY TABLE cp_known_counts ON COMMIT DROP AS
WITH wanted AS (
    SELECT source_key FROM pg_temp.cp_known_keys
), chosen AS (
    SELECT DISTINCT ON (source_key) source_key, local_day, {cell} AS h3_cell, valid_to
    FROM {schema}.incident_versions
    JOIN wanted USING (source_key)
    WHERE city = %(city)s
    ORDER BY source_key,
             valid_from <= %(known_at)s DESC,
             CASE WHEN valid_from <= %(known_at)s THEN valid_from END DESC,
             valid_from
)
SELECT local_day, h3_cell, count(*)::integer AS records
FROM chosen
WHERE valid_to > %(known_at)s
  AND local_day BETWEEN %(first_day)s AND %(last_observed)s
GROUP BY 1, 2;
