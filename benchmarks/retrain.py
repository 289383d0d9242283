"""Figure `retrain`: feature building plus the rolling-origin evaluation of the hotspot model
(6 folds of 28 test days), 4 cities x 365 days of hex-days: seconds and peak RSS.

The history is loaded first (untimed, in a process of its own so it does not count in this
one's peak RSS) with `citypulse_dev.sample_history`, the way the retrain demo seeds the
warehouse. Timed per city, with the functions the retrain DAG's tasks
call: `retrain.load_known` (the records known as of the day after the data, SQL hex-day
counts, ring, kernel-density and calendar features, daily coverage) and
`backtest.run_backtest` (baselines, the reference and the candidate model on every fold).
Skips with a reason while `citypulse.model` does not exist.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from typing import Any

from benchmarks import harness

LAST_DAY = date(2025, 10, 12)
FULL_WEEKS, SMOKE_WEEKS = 52, 8  # 364 days; smoke: warm-up + 14 training + 14 test days
SMOKE_RECORDS_PER_DAY = 40


def city_figure(contract: Any, config: Any, first: date, dsn: str) -> dict[str, Any]:
    from citypulse.model import features, retrain
    from citypulse.model.backtest import run_backtest
    from citypulse.model.config import CitySkipped

    try:
        folds = features.plan_folds(first, LAST_DAY, config)
        began = time.perf_counter()
        frame, _ = retrain.load_known(contract, features.feature_span(folds), config, None, dsn)
        splits = [features.split(frame, fold, config.hotspot_quantile) for fold in folds]
        built = time.perf_counter()
        run_backtest(splits, folds, config)
        trained = time.perf_counter()
    except CitySkipped as exc:
        return {"skipped": str(exc)}
    return {
        "hex_days": len(frame),
        "folds": len(folds),
        "train_rows": sum(len(s.train) for s in splits),
        "test_rows": sum(len(s.test) for s in splits),
        "features_s": round(built - began, 3),
        "training_s": round(trained - built, 3),
    }


def load_history(weeks: int, smoke: bool) -> float:
    """`python -m citypulse_dev.sample_history` into the figure's database; its seconds."""
    command = [
        sys.executable,
        "-m",
        "citypulse_dev.sample_history",
        f"--weeks={weeks}",
        f"--last={LAST_DAY.isoformat()}",
        *([f"--records-per-day={SMOKE_RECORDS_PER_DAY}"] if smoke else []),
    ]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=dict(os.environ))
    return round(time.perf_counter() - began, 1)


def run(smoke: bool) -> dict[str, Any]:
    if importlib.util.find_spec("citypulse.model") is None:
        return {"skipped": "citypulse.model does not exist yet"}
    from citypulse.contracts.contract import load_contracts
    from citypulse.model.config import RetrainConfig

    weeks = SMOKE_WEEKS if smoke else FULL_WEEKS
    first = LAST_DAY - timedelta(days=7 * weeks - 1)
    contracts = sorted(load_contracts()[0], key=lambda c: c.dag_id)[: 1 if smoke else None]
    # Six folds of 28 test days (smoke: two of 7), each training on every earlier loaded day
    # after the warm-up.
    folds, test_days = (2, 7) if smoke else (6, 28)
    config = RetrainConfig(training_days=730, test_days=test_days, folds=folds)
    with harness.fresh_database("retrain") as dsn:
        history_s = load_history(weeks, smoke)
        rss_before = harness.peak_rss_mb()
        began = time.perf_counter()
        cities = {c.dag_id: city_figure(c, config, first, dsn) for c in contracts}
        total_s = time.perf_counter() - began
    return {
        "days": 7 * weeks,
        "first_day": first.isoformat(),
        "last_day": LAST_DAY.isoformat(),
        "models": config.model_kinds(),
        "folds": folds,
        "test_days": test_days,
        "cities": cities,
        "total_s": round(total_s, 3),
        "history_load_s": history_s,
        "peak_rss_before_mb": rss_before,
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("retrain", run)
