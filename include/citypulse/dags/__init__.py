"""Airflow wiring: what `dags/` builds and what each task runs.

- `specs`          the plain DAG specs from the contracts, cached between parses
- `factory`        one DAG per spec; `table_asset`
- `operators`      `CityStepOperator`, the one operator of a city DAG
- `steps`          the step registry: each step's function, bound when the DAG is built
- `alerts`         failure callbacks (log line, optional webhook)
- `dagbag_errors`  broken contracts as import errors without losing healthy DAGs
- `backfill`       backfill whole local days (`citypulse backfill`)

Only `specs`, `factory`, `operators`, `alerts` and `dagbag_errors` load at parse time.
"""
