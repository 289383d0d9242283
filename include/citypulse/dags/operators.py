"""The operator every city DAG task is: one step of the registry `citypulse.dags.steps`.

A plain `BaseOperator` rather than TaskFlow's `@task`: the decorators import the standard
provider (and `packaging`) on first use, which made up most of what parsing `dags/` cost.

Each task tells OpenLineage what it read and wrote (`get_openlineage_facets_on_*`, built by
`citypulse.dags.lineage` from the step's result or the error that failed it). The provider's
listener calls them only when a transport is configured; lineage imports inside them.
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
    step_name: str = ""
    upstream: Any = None
    # What this try's step returned, or the error that failed it: its lineage's facts.
    step_result: Any = None
    step_error: BaseException | None = None

    def execute(self, context: Any) -> Any:
        step = getattr(self, "step", None)
        if step is None:
            raise TypeError(f"{self.task_id}: a CityStepOperator is built with city_step()")
        # In one process (`dag.test()`) the same operator runs again: nothing of an earlier try.
        self.step_result, self.step_error = None, None
        try:
            self.step_result = step(self.dag_id, self.upstream, dict(context))
        except BaseException as exc:
            self.step_error = exc
            raise
        return self.step_result

    def get_openlineage_facets_on_start(self) -> Any:
        from citypulse.dags.lineage import city_step_lineage

        return city_step_lineage(self.step_name, self.dag_id)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from citypulse.dags.lineage import city_step_lineage

        return city_step_lineage(self.step_name, self.dag_id, result=self.step_result)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        from citypulse.dags.lineage import city_step_lineage

        return city_step_lineage(self.step_name, self.dag_id, error=self.step_error)


def city_step(step: str, *, upstream: Any = None, **kwargs: Any) -> CityStepOperator:
    """The task running step `step` (its task id unless `task_id` is given), in the DAG being
    built; `upstream` is the previous step's output. Other arguments go to `BaseOperator`.

    `upstream` is assigned after `__init__`: Airflow sets the dependency of an `XComArg`
    assigned to a template field as it does for one passed to `__init__`.
    """
    bound = step_named(step)
    operator = CityStepOperator(task_id=kwargs.pop("task_id", step), **kwargs)
    operator.step = bound
    operator.step_name = step
    operator.upstream = upstream
    return operator
