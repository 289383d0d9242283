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
    an import error of the DAG file); the step's result is the task's XCom. The task id is
    the step's name unless given.

    `upstream` is the previous step's output (an `XComArg`, which also sets the dependency);
    Airflow resolves it to that step's result before `execute`.
    """

    template_fields = ("upstream",)
    ui_color = "#d9ecf7"

    def __init__(self, *, step: str, upstream: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", step)
        super().__init__(**kwargs)
        self.step: Step = step_named(step)
        self.upstream = upstream

    def execute(self, context: Any) -> Any:
        return self.step(self.dag_id, self.upstream, dict(context))
