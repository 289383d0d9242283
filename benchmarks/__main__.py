"""`python -m benchmarks`: run every figure, print one JSON line per figure, write BENCHMARKS.md.

    python -m benchmarks                      # full sizes; writes ./BENCHMARKS.md
    python -m benchmarks --only load,parse    # some figures
    python -m benchmarks --smoke --out /tmp/B.md   # tiny sizes, to prove every figure runs
    python -m benchmarks --rerender           # rewrite BENCHMARKS.md from its raw results

Each figure runs in a subprocess of its own with its own scratch folder, Airflow home and
warehouse database. Full runs go one figure at a time so figures never compete for the CPU;
smoke runs overlap a few, since only their JSON shape matters.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import FIGURES, harness, report

FIGURE_TIMEOUT_S = 900
# `stream` at 2 million records runs every side twice over 2 million records.
# `scale` grows a warehouse to 10 and 40 million rows, then times the daily operations on it;
# `year` reloads a year through the real DAG at two sizes.
LONG_FIGURES_TIMEOUT_S = {"stream": 5400, "scale": 4 * 3600, "year": 5400}
SMOKE_WORKERS = 3
# Figures that need a migrated Airflow metadata DB: the runner migrates one and they copy it.
NEEDS_AIRFLOW_DB = {"parse", "dag_day", "datasets", "scale", "year"}
# Smoke runs start the longest figures first (those needing the metadata DB wait for it).
SMOKE_ORDER = (
    "retrain",
    "scale",
    "load",
    "stream",
    "year",
    "datasets",
    "dag_day",
    "audit",
    "parse",
    "validate",
    "extract",
)


def run_figure(figure: str, env: dict[str, str], smoke: bool) -> dict[str, Any]:
    """One figure in its own interpreter; its JSON line, or an `error` with the stderr tail."""
    command = [sys.executable, "-m", f"benchmarks.{figure}", *(["--smoke"] if smoke else [])]
    began = time.perf_counter()
    timeout = LONG_FIGURES_TIMEOUT_S.get(figure, FIGURE_TIMEOUT_S)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"figure": figure, "error": f"timed out after {timeout} s"}
    seconds = round(time.perf_counter() - began, 1)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{") and '"figure"' in line:
            result: dict[str, Any] = json.loads(line)
            return {**result, "figure_wall_s": seconds}
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    return {"figure": figure, "error": f"exit {done.returncode}: {tail}", "figure_wall_s": seconds}


def airflow_template(workdir: Path, server: str) -> Path:
    """The metadata DB migrated once, into a SQLite file the figures copy."""
    env = harness.figure_env(workdir / "airflow-template", server)
    harness.prepare_airflow_db(env)
    return Path(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


def run_all(figures: Sequence[str], workdir: Path, server: str, smoke: bool) -> list[Any]:
    """Every figure; in smoke runs a few at once, the metadata DB migrated meanwhile."""
    template: Future[Path] | None = None

    def one(figure: str) -> dict[str, Any]:
        env = harness.figure_env(workdir / figure, server)
        if figure in NEEDS_AIRFLOW_DB and template is not None:
            env[harness.AIRFLOW_DB_TEMPLATE_ENV] = str(template.result())
        result = run_figure(figure, env, smoke)
        print(json.dumps(result, default=str), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=1) as migrator:
        if NEEDS_AIRFLOW_DB & set(figures):
            template = migrator.submit(airflow_template, workdir, server)
            if not smoke:
                template.result()  # before any figure, so it never competes with one
        workers = SMOKE_WORKERS if smoke else 1
        if smoke:
            figures = sorted(figures, key=lambda f: SMOKE_ORDER.index(f))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, figures))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds, not minutes)")
    parser.add_argument("--only", help=f"comma-separated figures out of {','.join(FIGURES)}")
    parser.add_argument("--out", type=Path, help="where to write the report")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="run nothing: rewrite --out from its own raw results (after editing FINDINGS.md)",
    )
    args = parser.parse_args(argv)
    args.figures = [f for f in (args.only or ",".join(FIGURES)).split(",") if f]
    unknown = sorted(set(args.figures) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    if args.out is None:
        # A smoke run never overwrites the real figures.
        smoke_dir = Path(tempfile.gettempdir()) / "citypulse-bench-smoke"
        args.out = smoke_dir / "BENCHMARKS.md" if args.smoke else harness.ROOT / "BENCHMARKS.md"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rerender:
        report.rerender(args.out)
        return 0
    began = time.perf_counter()
    with harness.session(keep=args.keep) as (workdir, server):
        machine = report.machine(server)
        results = run_all(args.figures, workdir, server, args.smoke)
    # Rounded once: the report and its raw results (read back by --rerender) must agree.
    seconds = round(time.perf_counter() - began, 1)
    report.write(args.out, results, machine, seconds, smoke=args.smoke)
    failed = [r["figure"] for r in results if "error" in r]
    print(
        f"{len(results)} figure(s) in {seconds:.0f} s; report: {args.out}"
        + (f"; FAILED: {failed}" if failed else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
