-- Offenses by category and NIBRS offense, all time.
CREATE OR REPLACE VIEW {schema}.seattle_crime_offenses_by_category AS
SELECT offense_category, nibrs_offense_code_description, count(*) AS offenses
FROM {schema}.{table}
WHERE cp_deleted_at IS NULL
GROUP BY 1, 2;
