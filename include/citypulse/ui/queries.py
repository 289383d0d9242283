"""What each UI page shows, read from the warehouse (read-only) and Airflow's metadata DB.

Every function returns plain dataclasses that FastAPI serialises as the page's JSON; the
pages are drawn in the browser from that same JSON, so page and API never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citypulse.contracts import Chart, Contract
from citypulse.settings import SCHEMA
from citypulse.ui.airflow_runs import RunInfo, latest_runs, run_info
from citypulse.ui.status import (
    CityFacts,
    DayCount,
    LatestAudit,
    ago,
    classify,
    flag_low_days,
    human_duration,
)

HEALTH_DAYS = 60
FORECAST_OBSERVED_DAYS = 7
REJECT_SAMPLE = 5
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@contextmanager
def reading() -> Iterator[Any]:
    """A cursor in a read-only transaction: the UI never writes the warehouse."""
    from citypulse.warehouse import connect

    with connect() as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        yield cur


def _exists(cur: Any, relation: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{relation}",))
    return bool(cur.fetchone()[0])


def _rows(cur: Any, relative: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    from citypulse.sqlfiles import render

    cur.execute(render(relative), params or {})
    return list(cur.fetchall())


# --- City health -----------------------------------------------------------------------------


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


def city_health(contracts: list[Contract], now: datetime | None = None) -> list[CityHealth]:
    """Every city's status with its reason, lag and last 60 local days."""
    now = now or datetime.now(UTC)
    runs = latest_runs([c.dag_id for c in contracts])
    with reading() as cur:
        loads = {}
        if _exists(cur, "pipeline_health"):
            loads = {row[0]: row for row in _rows(cur, "ui/last_loads.sql")}
        views_ready = _exists(cur, "incidents")
        result = []
        for contract in contracts:
            last = loads.get(contract.dag_id)
            today = now.astimezone(ZoneInfo(contract.timezone)).date()
            days = (
                _city_days(cur, contract.dag_id, today - timedelta(days=HEALTH_DAYS), today)
                if views_ready
                else []
            )
            result.append(_health(contract, last, days, runs.get(contract.dag_id), now))
    return result


def _city_days(cur: Any, dag_id: str, first: date, today: date) -> list[DayCount]:
    params = {"dag_id": dag_id, "first_day": first, "last_day": today - timedelta(days=1)}
    return [DayCount(*row) for row in _rows(cur, "ui/city_days.sql", params)]


def _health(
    contract: Contract,
    last: tuple[Any, ...] | None,
    days: list[DayCount],
    run: Any,
    now: datetime,
) -> CityHealth:
    (
        _,
        success_at,
        _run_id,
        window_end,
        extracted,
        rejected,
        rows_in_table,
        newest_event,
        audit_at,
        checked,
        differing,
        repaired,
        changed,
    ) = last or (None,) * 13
    audit = LatestAudit(audit_at, checked, differing, repaired, changed or 0) if audit_at else None
    facts = CityFacts(
        dag_id=contract.dag_id,
        timezone=contract.timezone,
        deadline_hours=contract.deadline_hours,
        latest_run=run,
        last_success_at=success_at,
        loaded_through=window_end,
        newest_event_utc=newest_event,
        days=tuple(days),
        latest_reject_rate=rejected / extracted if extracted else None,
        latest_audit=audit,
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
    )


# --- A run's validation report ---------------------------------------------------------------


@dataclass(frozen=True)
class RejectSample:
    key: str | None
    reason: str
    record: dict[str, Any]


@dataclass(frozen=True)
class RunReport:
    dag_id: str
    run_id: str
    city: bool  # a CityPulse city DAG (the tab shows on every DAG's runs)
    run: RunInfo | None
    validation: dict[str, Any] | None  # passed, message, created_at, report
    audit: dict[str, Any] | None
    reject_samples: list[RejectSample] = field(default_factory=list)


_AUDIT_FIELDS = (
    "window_start",
    "window_end",
    "timezone",
    "portal_rows",
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "seconds",
    "finished_at",
)


def run_report(contracts: list[Contract], dag_id: str, run_id: str) -> RunReport:
    """What validation found in one run, the run's audit row and a sample of its rejects."""
    if dag_id not in {c.dag_id for c in contracts}:
        return RunReport(dag_id, run_id, False, run_info(dag_id, run_id), None, None)
    params = {"dag_id": dag_id, "run_id": run_id, "limit": REJECT_SAMPLE}
    validation = audit = None
    samples: list[RejectSample] = []
    with reading() as cur:
        if _exists(cur, "validation_reports"):
            found = _rows(cur, "ui/run_validation.sql", params)
            if found:
                passed, message, report, created_at = found[0]
                validation = {
                    "passed": passed,
                    "message": message,
                    "created_at": created_at,
                    "report": report,
                }
        if _exists(cur, "ingest_runs"):
            found = _rows(cur, "ui/run_audit.sql", params)
            audit = dict(zip(_AUDIT_FIELDS, found[0], strict=True)) if found else None
            samples = [RejectSample(*row) for row in _rows(cur, "ui/run_rejects.sql", params)]
    return RunReport(dag_id, run_id, True, run_info(dag_id, run_id), validation, audit, samples)


# --- The hotspot map -------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastCell:
    h3_cell: str
    boundary: list[tuple[float, float]]  # (lat, lon) vertices
    probability: dict[str, float]  # per day (ISO date)
    flagged: dict[str, bool]


@dataclass(frozen=True)
class ObservedCell:
    h3_cell: str
    boundary: list[tuple[float, float]]
    incidents: int


@dataclass(frozen=True)
class ForecastMap:
    city: str
    title: str
    bbox: dict[str, float]
    resolution: int | None = None
    features_as_of: date | None = None
    days: list[date] = field(default_factory=list)
    published: dict[str, Any] | None = None
    cells: list[ForecastCell] = field(default_factory=list)
    observed_first_day: date | None = None
    observed_last_day: date | None = None
    observed: list[ObservedCell] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)


def _boundary(cell: str) -> list[tuple[float, float]]:
    import h3

    return [(round(lat, 6), round(lon, 6)) for lat, lon in h3.cell_to_boundary(cell)]


def forecast_map(contract: Contract) -> ForecastMap:
    """The city's published forecast per hexagon and day, last week's observed incidents per
    hexagon, and how the published model compares with the others of its retrain."""
    box = contract.bbox
    empty = ForecastMap(
        contract.dag_id,
        contract.title,
        {
            "min_lat": box.min_lat,
            "max_lat": box.max_lat,
            "min_lon": box.min_lon,
            "max_lon": box.max_lon,
        },
    )
    with reading() as cur:
        if not _exists(cur, "hotspot_predictions"):
            return empty
        rows = _rows(cur, "ui/published_forecast.sql", {"city": contract.dag_id})
        if not rows:
            return empty
        resolution, as_of, model_run_id = rows[0][2], rows[0][5], rows[0][6]
        probability: dict[str, dict[str, float]] = defaultdict(dict)
        flagged: dict[str, dict[str, bool]] = defaultdict(dict)
        for day, cell, _res, p, hot, _as_of, _run in rows:
            probability[cell][day.isoformat()] = p
            flagged[cell][day.isoformat()] = hot
        models = [
            {
                "id": mid,
                "model_kind": kind,
                "role": role,
                "metrics": metrics,
                "decision": decision,
                "promoted": promoted,
                "test_start": test_start,
                "test_end": test_end,
                "published": published,
            }
            for mid, kind, role, metrics, decision, promoted, test_start, test_end, published in (
                _rows(cur, "ui/model_comparison.sql", {"model_run_id": model_run_id})
            )
        ]
        first = as_of - timedelta(days=FORECAST_OBSERVED_DAYS - 1)
        observed = _rows(
            cur,
            "ui/observed_cells.sql",
            {
                "city": contract.dag_id,
                "resolution": resolution,
                "first_day": first,
                "last_day": as_of,
            },
        )
    return ForecastMap(
        city=contract.dag_id,
        title=contract.title,
        bbox=empty.bbox,
        resolution=resolution,
        features_as_of=as_of,
        days=sorted({row[0] for row in rows}),
        published=next((m for m in models if m["published"]), None),
        cells=[
            ForecastCell(cell, _boundary(cell), probability[cell], flagged[cell])
            for cell in sorted(probability)
        ],
        observed_first_day=first,
        observed_last_day=as_of,
        observed=[ObservedCell(cell, _boundary(cell), int(n)) for cell, n in observed if cell],
        models=models,
    )


# --- The source projects' charts -------------------------------------------------------------


@dataclass(frozen=True)
class ChartSeries:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class ChartData:
    title: str
    kind: str
    view: str
    x: str
    value: str
    percent: bool
    note: str
    labels: list[str]
    series: list[ChartSeries]


def _label(column: str, value: str) -> str:
    if column == "weekday" and value.isdigit() and 1 <= int(value) <= 7:
        return WEEKDAYS[int(value) - 1]
    return value


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def chart_data(chart: Chart, rows: list[tuple[str, str, float]]) -> ChartData:
    """One chart's labels and series from (x, series, value) rows: bars keep the `limit`
    largest x (by total), lines and heatmaps keep every x in order."""
    totals: dict[str, float] = defaultdict(float)
    cells: dict[tuple[str, str], float] = {}
    for x, series, value in rows:
        totals[x] += value
        cells[(x, series)] = value
    if chart.kind == "bar":
        labels = sorted(totals, key=lambda x: (-totals[x], x))[: chart.limit]
    else:
        labels = sorted(totals, key=_sort_key)
    names = sorted({s for _, s, _ in rows}, key=_sort_key)
    return ChartData(
        title=chart.title,
        kind=chart.kind,
        view=chart.view,
        x=chart.x,
        value=chart.value,
        percent=chart.percent,
        note=chart.note,
        labels=[_label(chart.x, x) for x in labels],
        series=[
            ChartSeries(
                _label(chart.series or "", name) or chart.value,
                [cells.get((x, name)) for x in labels],
            )
            for name in names
        ],
    )


def city_charts(contract: Contract) -> list[ChartData]:
    """The city's dashboard charts, each from its view (empty charts while nothing loaded)."""
    from psycopg2 import sql

    from citypulse.sqlfiles import render

    charts = []
    with reading() as cur:
        for chart in contract.dashboard:
            rows: list[tuple[str, str, float]] = []
            if _exists(cur, chart.view):
                cur.execute(
                    render(
                        "ui/chart.sql",
                        view=chart.view,
                        x=chart.x,
                        value=chart.value,
                        series=sql.Identifier(chart.series) if chart.series else sql.SQL("NULL"),
                    )
                )
                rows = list(cur.fetchall())
            charts.append(chart_data(chart, rows))
    return charts
