-- Incidents per hexagon of one resolution over the local days first_day .. last_day.
SELECT CASE WHEN %(resolution)s = 7 THEN h3_r7 ELSE h3_r8 END AS h3_cell,
       sum(incidents)::bigint AS incidents
FROM {schema}.hex_daily_counts
WHERE city = %(city)s AND local_day BETWEEN %(first_day)s AND %(last_day)s
GROUP BY 1;
