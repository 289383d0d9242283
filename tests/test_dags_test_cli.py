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
from helpers import by_id, fresh_dataset, logical_date_for, seed_days

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


def test_one_test_runs_conf_does_not_become_the_next_ones_defaults(
    dagbag: Any, standin: Any, fresh_warehouse: str, contracts: list[Any]
) -> None:
    """Story: in one session (a notebook, pytest) an engineer reloads a day with params,
    then tests the DAG for another day: the second run covers its own day."""
    from helpers import run_city_day

    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    first, second = DAY - timedelta(days=2), DAY - timedelta(days=1)
    seed_days(standin, contract, [first, second], seed=6)
    dag = dagbag.dags[contract.dag_id]
    conf = {"start_date": first.isoformat(), "end_date": first.isoformat()}
    assert str(dag.test(run_conf=conf).state) == "success"
    assert str(run_city_day(dag, contract, second).state) == "success"
    windows = query(
        fresh_warehouse, "SELECT window_start::date FROM citypulse.ingest_runs ORDER BY id"
    )
    assert windows == [(first,), (second,)]
    assert dag.params["start_date"] is None and dag.params["end_date"] is None
