"""User story: an analyst backtests the hotspot model on real data. The real Chicago carjacking
records (../shared/realdata, the 2022-12-31 snapshot; its 2019-2022 records, all the backtests
read) are reloaded through the `chicago_crime` DAG, then `hotspot_retrain` runs as of two
past days with `publish` false: as of 2022-01-01 every model is evaluated on six 28-day folds
of late 2021, forecasting 1-7 days ahead from data 7 days late (the contract's publication
lag), at resolution 7 and at the finer resolution 8; as of 2022-12-24 the city is skipped
because most late-2022 records have lost their coordinates, and with the gates switched off
the promotion rule alone refuses the candidate. The figures are the ones README shows
(between the `backtest-chicago` markers); `make backtest-chicago` rewrites that block.
Skipped when ../shared/realdata is absent.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from helpers import by_id, fresh_dataset, task_states
from test_realdata import CHICAGO_DEC31, adapted

pytestmark = [pytest.mark.realdata, pytest.mark.integration, pytest.mark.slow]

README = ROOT / "README.md"
BEGIN, END = "<!-- backtest-chicago:begin -->", "<!-- backtest-chicago:end -->"
CONF = {
    "cities": ["chicago_crime"],
    "training_days": 730,
    "test_days": 28,
    "folds": 6,
    "publish": False,
}
# (as_of, param overrides): the 2021 backtest at resolutions 7 and 8, late 2022 as gated, late
# 2022 with no gates.
BACKTESTS = (
    ("2022-01-01", {}),
    ("2022-01-01", {"h3_resolution": 8}),
    ("2022-12-24", {}),
    ("2022-12-24", {"min_coverage": 0.0, "min_test_positives": 0}),
)


def readme_block() -> str:
    text = README.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip() + "\n"


def write_readme_block(block: str) -> None:
    text = README.read_text()
    head, tail = text[: text.index(BEGIN) + len(BEGIN)], text[text.index(END) :]
    README.write_text(f"{head}\n{block}{tail}")


def backtest_report(dsn: str, run_ids: list[str]) -> str:
    import psycopg2

    from citypulse.model import registry
    from citypulse.model.report import run_summary

    parts = []
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for (_, overrides), run_id in zip(BACKTESTS, run_ids, strict=True):
            if overrides:
                parts.append(f"With {', '.join(f'`{k}` {v}' for k, v in overrides.items())}:\n")
            parts.append(
                run_summary(registry.run_metrics(cur, run_id), registry.run_gates(cur, run_id))
            )
    conn.close()
    return "\n".join(parts)


@pytest.fixture(scope="module")
def backtests(
    realdata: Path, dagbag: Any, standin: Any, module_warehouse: str, contracts: list[Any]
) -> list[Any]:
    contract = by_id(contracts, "chicago_crime")
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, adapted(realdata, CHICAGO_DEC31), key="id")
    city = dagbag.dags[contract.dag_id]
    # One load a year (a run loads at most max_window_days), from 2019: the earliest window
    # read (2021's oldest fold: 730 training and 28 warm-up days) starts in June 2019.
    for year in range(2019, 2023):
        history = {"start_date": f"{year}-01-01", "end_date": f"{year}-12-31"}
        assert str(city.test(run_conf=history).state) == "success"
    retrain = dagbag.dags["hotspot_retrain"]
    return [
        retrain.test(
            logical_date=datetime(2022, 12, 31, 12, tzinfo=UTC),
            run_conf={**CONF, "as_of": as_of, **overrides},
        )
        for as_of, overrides in BACKTESTS
    ]


def test_the_real_chicago_backtest_matches_readme(
    backtests: list[Any], module_warehouse: str
) -> None:
    for run in backtests:
        assert str(run.state) == "success", task_states(run)
    report = backtest_report(module_warehouse, [run.run_id for run in backtests])
    if os.environ.get("CITYPULSE_WRITE_README") == "1":
        write_readme_block(report)
    assert report == readme_block()


def test_late_2022_is_skipped_for_its_coverage_and_refused_without_gates(
    backtests: list[Any], module_warehouse: str
) -> None:
    from conftest import query

    ((passed, reason, figures),) = query(
        module_warehouse,
        "SELECT passed, reason, figures FROM citypulse.retrain_gates WHERE dag_run_id = %s",
        (backtests[2].run_id,),
    )
    assert not passed and "coordinate coverage" in reason and "min_coverage 0.8" in reason
    assert min(w["coverage"] for w in figures["coverage"]) < 0.5
    ((decision,),) = query(
        module_warehouse,
        "SELECT decision FROM citypulse.model_runs WHERE dag_run_id = %s AND role = 'candidate'",
        (backtests[3].run_id,),
    )
    assert "refused" in decision
