"""The test harness runs many `dag.test()` runs of the same DAG objects in one process; one
run's `conf` must not become the next run's defaults.

Airflow 3.3 merges a run's conf into the DAG's own `Param` objects when it resolves a task's
params in process (`process_params` -> `Param.resolve` sets `.value`), so without the guard in
conftest a backtest run with `as_of` and `cities` left the next retrain of another test
module running as of that day, for that city alone (CI failed in test_ui that way).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration
FRESH = "chicago_crime"


def test_a_runs_conf_does_not_become_the_next_runs_default(
    dagbag: Any, fresh_warehouse: str
) -> None:
    dag = dagbag.dags["hotspot_retrain"]
    every_city = dag.params["cities"]
    assert len(every_city) == 4
    now = datetime.now(UTC)

    backtest = dag.test(logical_date=now, run_conf={"cities": [FRESH], "as_of": "2022-12-24"})
    assert cities_mapped(backtest) == 1  # and skipped: nothing is loaded in this warehouse

    scheduled = dag.test(logical_date=now + timedelta(seconds=1))  # the DAG's defaults
    assert cities_mapped(scheduled) == len(every_city), "ran with the earlier run's cities"
    assert dag.params["cities"] == every_city and dag.params["as_of"] is None


def cities_mapped(run: Any) -> int:
    return sum(
        1
        for ti in run.get_task_instances()
        if ti.task_id == "city.check_freshness" and ti.map_index >= 0
    )
