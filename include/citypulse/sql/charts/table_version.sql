-- How many writes the table has had (0: none since CityPulse began counting).
SELECT coalesce((SELECT version FROM {schema}.table_versions WHERE table_name = %(table)s), 0);
