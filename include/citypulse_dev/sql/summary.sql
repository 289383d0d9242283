-- What `make demo` landed per city: its DAG runs (not the sample history's loads), what they
-- extracted and rejected, and every row the city holds (the sample history's too).
SELECT r.dag_id,
       count(*) AS runs,
       sum(r.extracted) AS extracted,
       sum(r.rejected) AS rejected,
       (SELECT count(*) FROM {schema}.incidents i WHERE i.city = r.dag_id) AS rows
FROM {schema}.ingest_runs r
WHERE r.run_id NOT LIKE 'sample_history%'
GROUP BY r.dag_id
ORDER BY r.dag_id;
