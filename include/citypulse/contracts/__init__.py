"""The data contracts: one YAML file per dataset says everything that differs between
datasets.

- `contract`      the pydantic models (`Contract`, columns, checks, incremental capture,
                  reconcile, dashboards) and `load_contracts` / `contract_by_id`
- `column_types`  the one registry of the column types a contract may declare
- `scaffold`      a draft contract from a portal's view metadata and profile answers: pure
                  guesses (types, key, event, change capture, box, timezone), each with why
- `draft`         the draft written as commented YAML (`citypulse contract init`)

Light on purpose: `dags/` imports `contract` and `column_types` when Airflow parses the DAG
files; `scaffold` and `draft` serve the command line only.
"""
