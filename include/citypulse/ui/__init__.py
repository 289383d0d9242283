"""CityPulse in the Airflow UI: what the plugin's pages and JSON API read and serve.

`status` decides a city's status in words; `airflow_runs` reads Airflow's metadata DB (runs,
task states); `queries` reads the warehouse; `app` is the FastAPI app the plugin mounts.
"""
