"""The operator every city DAG task is: one step of `citypulse.dags.steps`.

A plain `BaseOperator` rather than TaskFlow's `@task`: the decorators import the standard
provider (and `packaging`) on first use, which made up most of what parsing `dags/` cost.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class CityStepOperator(BaseOperator):
    """Runs `citypulse.dags.steps.run_step(task_id, dag_id, upstream, context)`; its result is the
    task's XCom.

    `upstream` is the previous step's output (an `XComArg`, which also sets the dependency);
    Airflow resolves it to that step's result before `execute`.
    """

    template_fields = ("upstream",)
    ui_color = "#d9ecf7"

    def __init__(self, *, upstream: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream

    def execute(self, context: Any) -> Any:
        from citypulse.dags import steps

        return steps.run_step(self.task_id, self.dag_id, self.upstream, dict(context))
