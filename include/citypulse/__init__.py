"""CityPulse: city open data from Socrata portals into PostgreSQL with Apache Airflow 3.

Packages, from the outside in (each `__init__` maps its modules):

- `contracts`  the YAML data contracts: typed models, the column-type registry
- `portal`     the Socrata client (paging, retries, the app token and its origin)
- `storage`    the storage root every task hands files through (Airflow Object Storage)
- `warehouse`  the PostgreSQL connection, the tables' DDL, SQL files (`sql/`, package data)
- `pipeline`   one city run by stage: `extract`, `validate/`, `load/`, `reconcile`, `views`,
               composed once in `pipeline.run`; `windows`, `manifest` and `run_files` are
               what the stages share
- `dags`       Airflow wiring: the DAG factory, its operator, the step registry, alerts,
               the parse-time contract cache, the backfill command
- `model`      the weekly hotspot model (`hotspot_retrain`)
- `ui`         the pages and JSON API the Airflow plugin mounts
- `cli`        the `citypulse` console script

`settings`, `exceptions`, `secrets` and `versioned` (what tasks hand on in XCom, read only in
the version they know) serve them all. Development tooling (the SODA
stand-in, the record generator, `make demo`, sample history) lives in `citypulse_dev`,
which the product never imports. Importing this package is cheap: no module imports
pandas, sodapy, psycopg2 or Great Expectations until a task runs.
"""
