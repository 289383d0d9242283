"""The operator every city DAG task is: one step of the registry `citypulse.dags.steps`.

A plain `BaseOperator` rather than TaskFlow's `@task`: the decorators import the standard
provider (and `packaging`) on first use, which made up most of what parsing `dags/` cost.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from citypulse.dags.steps import Step, step_named


class CityStepOperator(BaseOperator):
    """Runs one step of a city DAG, bound by name when the DAG is built (an unknown name is
    an import error of the DAG file); the step's result is the task's XCom. Built with
    `city_step`.

    `upstream` is the previous step's output (an `XComArg`, which also sets the dependency);
    Airflow resolves it to that step's result before `execute`.

    No `__init__` of its own: Airflow wraps every `__init__` of an operator class in
    `apply_defaults`, which deep-copies the DAG's params for the task each time, so a
    subclass `__init__` doubled that work for every task of every city DAG.
    """

    template_fields = ("upstream",)
    ui_color = "#d9ecf7"
    step: Step
    upstream: Any = None

    def execute(self, context: Any) -> Any:
        step = getattr(self, "step", None)
        if step is None:
            raise TypeError(f"{self.task_id}: a CityStepOperator is built with city_step()")
        return step(self.dag_id, self.upstream, dict(context))


def city_step(step: str, *, upstream: Any = None, **kwargs: Any) -> CityStepOperator:
    """The task running step `step` (its task id unless `task_id` is given), in the DAG being
    built; `upstream` is the previous step's output. Other arguments go to `BaseOperator`.

    `upstream` is assigned after `__init__`: Airflow sets the dependency of an `XComArg`
    assigned to a template field as it does for one passed to `__init__`.
    """
    bound = step_named(step)
    operator = CityStepOperator(task_id=kwargs.pop("task_id", step), **kwargs)
    operator.step = bound
    operator.upstream = upstream
    return operator
