"""What Airflow itself knows of city runs: the newest run per DAG and a run's task states.

Read from the metadata DB through Airflow's own models: the plugin runs inside the
api-server, which is configured for that DB.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from citypulse.ui.status import LatestRun


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str | None
    try_number: int
    duration_seconds: float | None


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    state: str | None
    run_type: str
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    tasks: tuple[TaskState, ...]


def latest_runs(dag_ids: list[str]) -> dict[str, LatestRun]:
    """The most recently created run of each DAG (any type: scheduled, manual, backfill)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    newest = (
        select(DagRun.dag_id, func.max(DagRun.id).label("id"))
        .where(DagRun.dag_id.in_(dag_ids))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    found: dict[str, LatestRun] = {}
    with create_session() as session:
        runs = session.scalars(select(DagRun).join(newest, DagRun.id == newest.c.id)).all()
        for run in runs:
            failed: tuple[str, ...] = ()
            if run.state == "failed":
                failed = tuple(
                    session.scalars(
                        select(TaskInstance.task_id)
                        .where(
                            TaskInstance.dag_id == run.dag_id,
                            TaskInstance.run_id == run.run_id,
                            TaskInstance.state == "failed",
                        )
                        .order_by(TaskInstance.task_id)
                    ).all()
                )
            at = run.end_date or run.start_date or run.queued_at or run.run_after
            found[run.dag_id] = LatestRun(run.run_id, str(run.state), at, failed)
    return found


def run_info(dag_id: str, run_id: str) -> RunInfo | None:
    """One run and its task instances, or None when Airflow has no such run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one_or_none()
        if run is None:
            return None
        instances = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.start_date.nulls_last(), TaskInstance.task_id)
        ).all()
        return RunInfo(
            dag_id=dag_id,
            run_id=run_id,
            state=None if run.state is None else str(run.state),
            run_type=str(run.run_type),
            logical_date=run.logical_date,
            start_date=run.start_date,
            end_date=run.end_date,
            tasks=tuple(
                TaskState(ti.task_id, ti.state and str(ti.state), ti.try_number, ti.duration)
                for ti in instances
            ),
        )
