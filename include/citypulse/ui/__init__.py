"""CityPulse in the Airflow UI: what the plugin's pages and JSON API read and serve.

`app` is the FastAPI app the plugin mounts; one module per page reads what it shows:
`health` (with the rules of `status`), `run_report`, `forecast` (the hotspot map), `charts`;
`db` reads the warehouse read-only, `airflow_runs` Airflow's metadata DB.
"""
