"""CityPulse city DAGs for Airflow: one per YAML data contract in include/contracts/.

Adding a city means adding a contract file; nothing here changes. A broken contract shows
up as an import error naming the file and the field, and every other city still loads.
"""

from __future__ import annotations

import sys
from pathlib import Path

_INCLUDE = Path(__file__).resolve().parents[1] / "include"
if str(_INCLUDE) not in sys.path:  # the package ships beside dags/, not installed
    sys.path.insert(0, str(_INCLUDE))

from citypulse.dag_specs import city_dag_specs  # noqa: E402
from citypulse.factory import build_city_dag  # noqa: E402

_specs, _errors = city_dag_specs()
for _spec in _specs:
    globals()[_spec.dag_id] = build_city_dag(_spec)
if _errors:
    from citypulse.dagbag_errors import contract_error_dag

    contract_errors = contract_error_dag(_errors)
