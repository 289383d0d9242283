"""The benchmarks cannot rot: every figure runs at a tiny size and prints its JSON line.

Speed is not asserted here (that is what `make bench` and BENCHMARKS.md are for); only that
each figure runs end to end and reports the keys BENCHMARKS.md is written from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow]

EXPECTED_KEYS = {
    "load": {"project_insert", "project_update", "raw_copy", "to_sql", "ratio_vs_copy",
             "ratio_vs_to_sql", "columns_written"},
    "extract": {"sizes", "rss_growth", "page_size"},
    "parse": {"file_seconds", "factory_vs_one_task", "heavy_modules_at_parse"},
    "validate": {"gx", "pandas", "gx_vs_pandas", "same_rejects"},
    "dag_day": {"first_run", "second_run", "records"},
    "audit": {"cities", "days", "edited_days", "peak_rss_mb"},
    "stream": {"sizes", "targets"},
    "year": {"sizes", "rss_growth", "size_growth", "targets"},
    "datasets": {"datasets", "per_dag_ms", "ratio_cold", "ratio_warm", "scheduler",
                 "marginal_per_dag_ms", "fixed_s", "ratio_same_shape"},
    "scale": {"sizes", "targets", "all_met", "growth", "own_rows"},
}  # fmt: skip
RETRAIN_KEYS = {"cities", "total_s", "peak_rss_mb"}


def benchmarks_cli(*args: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks <args>` from the project root, as `make bench` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT)]),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def smoke_run(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`python -m benchmarks --smoke` once; its JSON lines by figure and the report path."""
    out = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    done = benchmarks_cli("--smoke", "--out", str(out), timeout=600, CITYPULSE_BENCH_PG=pg_server)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {
        "returncode": done.returncode,
        "stderr": done.stderr[-3000:],
        "figures": {line["figure"]: line for line in lines},
        "report": out,
    }


def test_every_figure_prints_one_json_line(smoke_run: dict[str, Any]) -> None:
    assert smoke_run["returncode"] == 0, smoke_run["stderr"]
    assert set(smoke_run["figures"]) == set(EXPECTED_KEYS) | {"retrain"}
    for figure, result in smoke_run["figures"].items():
        assert "error" not in result, (figure, result.get("error"))
        assert result["smoke"] is True


@pytest.mark.parametrize("figure", sorted(EXPECTED_KEYS))
def test_figure_reports_its_keys(smoke_run: dict[str, Any], figure: str) -> None:
    result = smoke_run["figures"][figure]
    assert EXPECTED_KEYS[figure] <= set(result), sorted(result)


def test_retrain_reports_or_says_why_it_skipped(smoke_run: dict[str, Any]) -> None:
    result = smoke_run["figures"]["retrain"]
    assert "skipped" in result or set(result) >= RETRAIN_KEYS, result


def test_datasets_parses_every_copy_and_the_scheduler_runs_each(
    smoke_run: dict[str, Any],
) -> None:
    """Ten datasets (two without a place): each side parses all ten DAGs (and one DAG, for
    the slope), and a real scheduler creates every one's daily run."""
    result = smoke_run["figures"]["datasets"]
    assert result["datasets"] == 10 and result["unplaced"] == 2
    sides = ("cold", "warm", "one_task", "same_shape")
    assert result["dags_found"] == {**dict.fromkeys(sides, 10), **{f"{s}_1": 1 for s in sides}}
    assert result["tasks_per_dag"] == {"cold": 6, "warm": 6, "one_task": 1, "same_shape": 6}
    scheduler = result["scheduler"]
    assert scheduler["serialized"] == scheduler["with_scheduled_run"] == 10, scheduler


def test_load_pass_counts_add_up(smoke_run: dict[str, Any]) -> None:
    result = smoke_run["figures"]["load"]
    first, second = result["project_insert"], result["project_update"]
    assert first["inserted"] == second["updated"] > 0
    assert first["inserted"] + first["rejected"] == result["records"]


def test_report_is_written_where_asked_not_in_the_repository(smoke_run: dict[str, Any]) -> None:
    report: Path = smoke_run["report"]
    text = report.read_text(encoding="utf-8")
    assert "## Targets" in text and "SMOKE" in text
    assert report.resolve() != (ROOT / "BENCHMARKS.md").resolve()


def test_report_rerenders_from_its_own_raw_results(smoke_run: dict[str, Any]) -> None:
    report: Path = smoke_run["report"]
    before = report.read_text(encoding="utf-8")
    done = benchmarks_cli("--rerender", "--out", str(report), timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert report.read_text(encoding="utf-8") == before
