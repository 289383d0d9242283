"""User story: an engineer debugs a city DAG the way every Airflow user does, with the real
`airflow dags test <dag> <date>` CLI, on the DAG exactly as deployed (its Deadline alert
included), and the command loads the day and exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from typing import Any

import pytest

from conftest import query
from helpers import by_id, logical_date_for, seed_days

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date.today() - timedelta(days=5)


def test_airflow_dags_test_loads_a_day_and_exits_0(
    airflow_db: str, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    contract = by_id(contracts, "nyc_311")
    standin.clear(contract.dataset_id)
    served = seed_days(standin, contract, [DAY], seed=5)[DAY]
    logical = logical_date_for(contract, DAY).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", contract.dag_id, logical],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (loaded,) = query(
        fresh_warehouse,
        "SELECT loaded + rejected FROM citypulse.ingest_runs WHERE dag_id = %s",
        (contract.dag_id,),
    )
    assert loaded == (len(served.records),)
