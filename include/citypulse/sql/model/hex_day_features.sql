-- One row per (hexagon, local day) of a city, from the first to the last requested day, from
-- the counts known_counts.sql kept. Hexagons are those with any incident up to
-- `last_observed`; `first_seen` is each one's first day with an incident, so a fold keeps
-- only the hexagons seen by the end of its training window (features.split). A hex-day
-- without incidents is a real zero. Days after `last_observed` have no count yet (NULL): only
-- their features are known. Every feature of day D is computed from days strictly before D.
WITH counts AS (
    SELECT h3_cell, local_day, records AS incidents
    FROM pg_temp.cp_known_counts
    WHERE h3_cell IS NOT NULL
), cells AS (
    SELECT h3_cell, min(local_day) AS first_seen FROM counts GROUP BY h3_cell
), days AS (
    SELECT d::date AS local_day
    FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS d
), grid AS (
    SELECT c.h3_cell,
           c.first_seen,
           d.local_day,
           CASE WHEN d.local_day <= %(last_observed)s THEN coalesce(n.incidents, 0) END
               AS incidents
    FROM cells c
    CROSS JOIN days d
    LEFT JOIN counts n ON n.h3_cell = c.h3_cell AND n.local_day = d.local_day
)
SELECT h3_cell,
       local_day,
       first_seen,
       incidents,
       lag(incidents, 1) OVER w AS lag_1,
       lag(incidents, 7) OVER w AS lag_7,
       (avg(incidents) OVER (w ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING))::double precision
           AS mean_7,
       (avg(incidents) OVER (w ROWS BETWEEN 28 PRECEDING AND 1 PRECEDING))::double precision
           AS mean_28,
       (avg(incidents) OVER (w ROWS BETWEEN 365 PRECEDING AND 1 PRECEDING))::double precision
           AS mean_365,
       (avg(incidents) OVER (w ROWS BETWEEN 730 PRECEDING AND 1 PRECEDING))::double precision
           AS mean_730,
       (avg(incidents) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))::double precision
           AS hex_mean
FROM grid
WINDOW w AS (PARTITION BY h3_cell ORDER BY local_day)
ORDER BY h3_cell, local_day;
