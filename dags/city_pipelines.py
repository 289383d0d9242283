"""CityPulse city DAGs for Airflow: one per YAML data contract in include/contracts/
(`CITYPULSE_CONTRACTS_DIR`); the `citypulse` package is installed (`pip install .`).

Adding a city means adding a contract file; nothing here changes. A broken contract shows
up as an import error naming the file and the field, and every other city still loads.
"""

from __future__ import annotations

from citypulse.dags.factory import build_city_dag
from citypulse.dags.specs import city_dag_specs

_specs, _errors = city_dag_specs()
for _spec in _specs:
    globals()[_spec.dag_id] = build_city_dag(_spec)
if _errors:
    from citypulse.dags.dagbag_errors import contract_error_dag

    contract_errors = contract_error_dag(_errors)
