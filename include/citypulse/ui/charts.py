"""The source projects' questions: each city's dashboard charts from its views."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from citypulse.contracts.contract import Chart, Contract
from citypulse.ui.db import exists, reading

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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


def chart_data(chart: Chart, rows: list[tuple[Any, ...]]) -> ChartData:
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
    """The city's dashboard charts, each from its view (empty charts while nothing loaded):
    as the city's `views` task cached it for the table as it is, else computed now."""
    from citypulse.warehouse import chart_cache

    charts = []
    with reading() as cur:
        caching = exists(cur, "chart_cache")
        for chart in contract.dashboard:
            rows: list[tuple[Any, ...]] = []
            if exists(cur, chart.view):
                found = chart_cache.cached(cur, contract, chart) if caching else None
                rows = found if found is not None else chart_cache.compute(cur, chart)
            charts.append(chart_data(chart, rows))
    return charts
