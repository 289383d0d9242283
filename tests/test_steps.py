"""The step registry (`citypulse.dags.steps`): what each city DAG task runs is bound when the
DAG is built, so a misspelled step is an import error of `dags/`, never a failure at run time.
"""

from __future__ import annotations

from typing import Any

import pytest

from citypulse.dags.operators import CityStepOperator, city_step
from citypulse.dags.steps import STEPS, step_named


def test_every_city_task_runs_the_registered_step_of_its_name(dagbag: Any) -> None:
    city_dags = [
        d
        for d in dagbag.dags.values()
        if "citypulse" in d.tags
        and d.dag_id in {"nyc_311", "seattle_crime", "chicago_crime", "montgomery_traffic"}
    ]
    assert city_dags
    for dag in city_dags:
        assert {t.task_id for t in dag.tasks} == set(STEPS)
        for task in dag.tasks:
            assert isinstance(task, CityStepOperator)
            assert task.step is STEPS[task.task_id]


def test_an_unknown_step_fails_when_the_dag_is_built_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="no step 'extrct' in a city DAG; the steps are extract, "):
        city_step("extrct")
    with pytest.raises(ValueError, match="build_views"):
        step_named("views")


def test_a_step_may_run_under_another_task_id() -> None:
    operator = city_step("housekeeping", task_id="tidy_up")
    assert operator.task_id == "tidy_up" and operator.step is STEPS["housekeeping"]


def test_housekeeping_with_a_missing_storage_connection_fails_at_once_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse import settings

    monkeypatch.setattr(settings, "STORAGE_URL", "s3://no_such_conn@bucket/prefix")
    with pytest.raises(AirflowFailException, match="no Airflow connection 'no_such_conn'"):
        STEPS["housekeeping"]("nyc_311", None, {"run_id": "manual__1"})


def test_load_after_a_failed_validate_says_validate_has_not_succeeded() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    # What `airflow tasks test ... load` is handed when validate failed: no XCom at all.
    with pytest.raises(AirflowFailException) as caught:
        STEPS["load"]("nyc_311", None, {"run_id": "manual__1"})
    message = str(caught.value)
    assert "`load` was handed no run manifest: the task before it has not succeeded" in message
    assert "another CityPulse version" not in message
