"""The weekly hotspot model: H3 hex-day features from the warehouse, time-split training,
honest baselines, and a model registry in PostgreSQL.

Modules, in pipeline order: `config` (the run's settings, validated from DAG Params),
`freshness`, `features` (the records known as of a day, folds), `gates` (coverage and volume),
`models`, `metrics`, `backtest` (every model on every fold), `promotion` (candidate or best
baseline), `registry`, `predict`, `report`; `retrain` runs them for one city, `tasks` adapts
it to the Airflow context of the `hotspot_retrain` DAG, and `handoff` is the typed, versioned
object its tasks hand each other (`CityRetrain`). Only `config` and `handoff` are light
enough to import when Airflow parses `dags/`; the others pull in pandas, scikit-learn, h3 or
psycopg2. (Weeks of generated history for demos and tests: `citypulse_dev.sample_history`.)
"""
