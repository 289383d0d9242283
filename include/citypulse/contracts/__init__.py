"""The data contracts: one YAML file per dataset says everything that differs between
datasets.

- `contract`      the pydantic models (`Contract`, columns, checks, incremental capture,
                  reconcile, dashboards) and `load_contracts` / `contract_by_id`
- `column_types`  the one registry of the column types a contract may declare

Light on purpose: `dags/` imports both when Airflow parses the DAG files.
"""
