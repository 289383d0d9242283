"""`@retrain_task`: TaskFlow's `@task` for the city tasks of `hotspot_retrain`, telling
OpenLineage which tables each read and wrote (`citypulse.dags.lineage.retrain_lineage`).

Imported by `dags/hotspot_retrain.py` only, which uses TaskFlow (and so the standard
provider's decorators) anyway; the city DAGs' operators stay plain (`operators.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk.bases.decorator import task_decorator_factory


class RetrainTaskOperator(_PythonDecoratedOperator):
    """A `@task` whose lineage is its city's tables in, registry or forecast tables out,
    with the rows its hand-off (the task's XCom) says it wrote."""

    task_result: Any = None

    def execute(self, context: Any) -> Any:
        self.task_result = None  # in one process (`dag.test()`) the operator runs again
        self.task_result = super().execute(context)
        return self.task_result

    def city(self) -> str | None:
        """The task's city: its argument, or the `city` of the hand-off it was given."""
        for value in (*(self.op_args or ()), *(self.op_kwargs or {}).values()):
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("city"), str):
                return str(value["city"])
        return None

    def lineage(self, result: Any = None) -> Any:
        from citypulse.dags.lineage import retrain_lineage

        return retrain_lineage(self.task_id.rsplit(".", 1)[-1], self.city(), result)

    def get_openlineage_facets_on_start(self) -> Any:
        return self.lineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self.lineage(self.task_result)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self.lineage()


def retrain_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task`, with the task's lineage (see `RetrainTaskOperator`)."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=RetrainTaskOperator,
        **kwargs,
    )
