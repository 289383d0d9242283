"""City health: each city's status with its reason, lag, latest audit, last 60 days and the
portal's open schema changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citypulse.contracts.contract import Contract
from citypulse.ui.airflow_runs import latest_runs
from citypulse.ui.db import exists, fetch, reading
from citypulse.ui.status import (
    CityFacts,
    DayCount,
    LatestAudit,
    OpenSchemaChange,
    ago,
    classify,
    flag_low_days,
    human_duration,
)
from citypulse.warehouse.types import Cursor

HEALTH_DAYS = 60


@dataclass(frozen=True)
class DayPoint:
    day: date
    rows: int | None  # None: no load covered the day
    rejects: int
    reject_rate: float | None
    flagged: bool
    weekday_median: float | None


@dataclass(frozen=True)
class AuditSummary:
    at: datetime
    ago: str
    days_checked: int
    days_differing: int
    days_repaired: int
    rows_changed: int


@dataclass(frozen=True)
class CityHealth:
    dag_id: str
    title: str
    timezone: str
    status: str
    reason: str
    last_success_at: datetime | None
    last_success_ago: str | None
    newest_event_utc: datetime | None
    event_lag: str | None
    rows_in_table: int | None
    latest_run_id: str | None
    latest_run_state: str | None
    audit: AuditSummary | None
    days: list[DayPoint] = field(default_factory=list)
    schema_drift: list[OpenSchemaChange] = field(default_factory=list)  # open, oldest first


def city_health(contracts: list[Contract], now: datetime | None = None) -> list[CityHealth]:
    """Every city's status with its reason, lag and last 60 local days."""
    now = now or datetime.now(UTC)
    runs = latest_runs([c.dag_id for c in contracts])
    with reading() as cur:
        loads = {}
        if exists(cur, "pipeline_health"):
            loads = {row[0]: row for row in fetch(cur, "ui/last_loads.sql")}
        views_ready = exists(cur, "city_record_days")
        drift: dict[str, list[OpenSchemaChange]] = {}
        if exists(cur, "schema_changes"):
            for dag_id, *change in fetch(cur, "ui/schema_drift.sql"):
                drift.setdefault(dag_id, []).append(OpenSchemaChange(*change))
        result = []
        for contract in contracts:
            last = loads.get(contract.dag_id)
            today = now.astimezone(ZoneInfo(contract.timezone)).date()
            days = (
                _city_days(cur, contract.dag_id, today - timedelta(days=HEALTH_DAYS), today)
                if views_ready
                else []
            )
            result.append(
                _health(
                    contract,
                    last,
                    days,
                    runs.get(contract.dag_id),
                    now,
                    tuple(drift.get(contract.dag_id, ())),
                )
            )
    return result


def _city_days(cur: Cursor, dag_id: str, first: date, today: date) -> list[DayCount]:
    params = {"dag_id": dag_id, "first_day": first, "last_day": today - timedelta(days=1)}
    return [DayCount(*row) for row in fetch(cur, "ui/city_days.sql", params)]


def _health(
    contract: Contract,
    last: tuple[Any, ...] | None,
    days: list[DayCount],
    run: Any,
    now: datetime,
    drift: tuple[OpenSchemaChange, ...] = (),
) -> CityHealth:
    (
        _,
        success_at,
        _run_id,
        loaded_through,
        extracted,
        rejected,
        rows_in_table,
        newest_event,
        audit_at,
        checked,
        differing,
        repaired,
        changed,
        outcome,
        refusal,
        disputed,
    ) = last or (None,) * 16
    audit = (
        LatestAudit(
            audit_at,
            checked,
            differing,
            repaired,
            changed or 0,
            outcome or "complete",
            refusal,
            disputed or 0,
        )
        if audit_at
        else None
    )
    facts = CityFacts(
        dag_id=contract.dag_id,
        timezone=contract.timezone,
        deadline_hours=contract.deadline_hours,
        latest_run=run,
        last_success_at=success_at,
        loaded_through=loaded_through,
        newest_event_utc=newest_event,
        days=tuple(days),
        latest_reject_rate=rejected / extracted if extracted else None,
        latest_audit=audit,
        schema_drift=drift,
    )
    verdict = classify(facts, now)
    flagged = {f.day: f for f in flag_low_days(days)}
    return CityHealth(
        dag_id=contract.dag_id,
        title=contract.title,
        timezone=contract.timezone,
        status=verdict.status.value,
        reason=verdict.reason,
        last_success_at=success_at,
        last_success_ago=ago(success_at, now) if success_at else None,
        newest_event_utc=newest_event,
        event_lag=human_duration(now - newest_event) if newest_event else None,
        rows_in_table=rows_in_table,
        latest_run_id=run.run_id if run else None,
        latest_run_state=run.state if run else None,
        audit=(
            AuditSummary(audit.at, ago(audit.at, now), checked, differing, repaired, changed or 0)
            if audit
            else None
        ),
        days=[
            DayPoint(
                day=d.day,
                rows=d.rows if d.loaded else None,
                rejects=d.rejects,
                reject_rate=d.reject_rate,
                flagged=d.day in flagged,
                weekday_median=flagged[d.day].median if d.day in flagged else None,
            )
            for d in days
        ],
        schema_drift=list(drift),
    )
