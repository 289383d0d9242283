-- A new forecast replaces every row of the days it covers, whichever model wrote them and
-- whichever hexagons they were for (the insert follows in the same transaction).
DELETE FROM {schema}.hotspot_predictions
WHERE city = %(city)s AND resolution = %(resolution)s AND day BETWEEN %(first)s AND %(last)s;
