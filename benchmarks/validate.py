"""Figure `validate`: what the Great Expectations suite costs, per 100,000 rows and per task
(import, context), against the `vectorized` engine (the same suite, GX's verdicts, in
pandas/NumPy: what validate runs) and the same row checks written in plain pandas.

All check the same typed NYC-311 batch in one process; the figure also says whether the
engines give the same report and reasons, and pandas flags exactly the same rows.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from benchmarks import harness

DAG_ID = "nyc_311"
DAY = date(2025, 10, 13)
FULL_ROWS, SMOKE_ROWS = 100_000, 200
SMALL_ROWS = 1_000  # a batch small enough that GX's per-run fixed cost dominates


def typed_batch(contract: Any, records: list[dict[str, Any]]) -> Any:
    """The batch the validate task hands the suite: the records written as an extract file,
    then typed by `type_extract` (Arrow-backed text columns, as in production)."""
    from citypulse.pipeline.validate.typing_rules import type_extract
    from citypulse_dev.generator import write_ndjson

    path = harness.workdir("validate") / f"extract_{len(records)}.ndjson"
    write_ndjson(records, path)
    return type_extract(contract, path)


def pandas_checks(contract: Any, frame: Any, window: Any) -> Any:
    """The suite's row-level expectations in plain pandas: a mask of the rows that fail."""
    import numpy as np

    failing = np.zeros(len(frame), dtype=bool)
    for column in contract.columns:
        values = frame[column.name]
        if column.required:
            failing |= values.isna().to_numpy()
        if column.values:
            failing |= (values.notna() & ~values.isin(column.values)).to_numpy()
    key = frame[contract.key]
    failing |= (key.notna() & key.duplicated(keep=False)).to_numpy()
    event = frame[contract.event_time]
    in_window = (event >= window.start) & (event < window.end)
    checked = frame["cp_origin"] == "window" if "cp_origin" in frame else event.notna()
    failing |= (checked & event.notna() & ~in_window).to_numpy()
    box = contract.bbox
    for name, low, high in (
        (contract.latitude, box.min_lat, box.max_lat),
        (contract.longitude, box.min_lon, box.max_lon),
    ):
        values = frame[name]
        failing |= (values.notna() & ~values.between(low, high)).to_numpy()
    return failing


def suite_run(
    contract: Any, records: list[dict[str, Any]], window: Any, engine: str
) -> tuple[float, Any, Any]:
    """Seconds of the suite under `engine` (GX: context, suite, validation), the rows it
    rejects (with their reasons) and its report."""
    from citypulse.pipeline.validate.suite import SuiteRunner, merged_report

    batch = typed_batch(contract, records)
    began = time.perf_counter()
    report = merged_report([SuiteRunner(contract, window, engine).check(batch)])
    seconds = time.perf_counter() - began
    return seconds, (batch.rejected_mask, batch.reasons), report.to_json()


def pandas_run(contract: Any, records: list[dict[str, Any]], window: Any) -> tuple[float, Any]:
    batch = typed_batch(contract, records)
    began = time.perf_counter()
    failing = pandas_checks(contract, batch.frame, window)
    return time.perf_counter() - began, batch.rejected_mask | failing


def run(smoke: bool) -> dict[str, Any]:
    import numpy as np
    import pandas  # noqa: F401  (imported before GX so GX's own import is what is timed)

    from citypulse.contracts.contract import contract_by_id
    from citypulse.pipeline.windows import window_for_dates
    from citypulse_dev.generator import generate_records

    n = SMOKE_ROWS if smoke else FULL_ROWS
    contract = contract_by_id(DAG_ID)
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    records = generate_records(contract, n, day=DAY, seed=2)
    small = records[: min(SMALL_ROWS, max(1, n // 2))]
    typed_batch(contract, small)  # pandas and h3 warm before anything is timed

    began = time.perf_counter()
    import great_expectations  # noqa: F401

    import_s = time.perf_counter() - began
    from citypulse.pipeline.validate.suite import _context

    began = time.perf_counter()
    _context()
    context_s = time.perf_counter() - began
    gx_small_s, _, _ = suite_run(contract, small, window, "gx")
    gx_s, (gx_rejects, gx_reasons), gx_report = suite_run(contract, records, window, "gx")
    vec_small_s, _, _ = suite_run(contract, small, window, "vectorized")
    vec_s, (_, vec_reasons), vec_report = suite_run(contract, records, window, "vectorized")
    pandas_small_s, _ = pandas_run(contract, small, window)
    pandas_s, pandas_rejects = pandas_run(contract, records, window)
    per_100k = 100_000 / n
    return {
        "dataset": DAG_ID,
        "rows": n,
        "gx": {
            "import_s": round(import_s, 3),
            "first_context_s": round(context_s, 3),
            "run_small_s": round(gx_small_s, 3),
            "run_s": round(gx_s, 3),
            "per_100k_rows_s": round(max(gx_s - gx_small_s, 0.0) * per_100k, 3),
            "fixed_per_task_s": round(import_s + gx_small_s, 3),
        },
        "vectorized": {
            "run_small_s": round(vec_small_s, 4),
            "run_s": round(vec_s, 4),
            "per_100k_rows_s": round(max(vec_s - vec_small_s, 0.0) * per_100k, 4),
        },
        "gx_vs_vectorized": round(gx_s / vec_s, 1) if vec_s else None,
        "same_report_and_reasons": vec_report == gx_report and vec_reasons == gx_reasons,
        "pandas": {
            "run_small_s": round(pandas_small_s, 4),
            "run_s": round(pandas_s, 4),
            "per_100k_rows_s": round(max(pandas_s - pandas_small_s, 0.0) * per_100k, 4),
        },
        "gx_vs_pandas": round(gx_s / pandas_s, 1) if pandas_s else None,
        "rejected_rows": int(gx_rejects.sum()),
        "same_rejects": bool(np.array_equal(gx_rejects, pandas_rejects)),
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("validate", run)
