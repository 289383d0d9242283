"""BENCHMARKS.md from one run's JSON lines: machine, targets, one section per figure, and the
profile findings kept by hand in `benchmarks/FINDINGS.md`."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

FINDINGS = Path(__file__).with_name("FINDINGS.md")
RAW_START = "```json"
PACKAGES = (
    "apache-airflow",
    "pandas",
    "pyarrow",
    "great_expectations",
    "psycopg2-binary",
    "msgspec",
    "h3",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        out = subprocess.run(["free", "-h"], capture_output=True, text=True, check=True).stdout
        mem = next(line for line in out.splitlines() if line.startswith("Mem:")).split()
        return f"{mem[1]} total, {mem[6]} available (free -h)"
    except (OSError, subprocess.CalledProcessError, StopIteration, IndexError):
        return "unknown"


def _postgres(server: str) -> str:
    import psycopg2

    with psycopg2.connect(server) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = str(cur.fetchone()[0])
    conn.close()
    return version


def machine(server: str) -> dict[str, Any]:
    """What the figures ran on, read at the start of the run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory": _memory(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgresql": _postgres(server),
        "os": platform.platform(),
        "packages": versions,
    }


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _targets(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = ["| figure | target | measured | verdict |", "|---|---|---|---|"]
    load = results.get("load", {})
    if "ratio_vs_copy" in load:
        rows.append(
            f"| load | project path >= 0.5x raw COPY rows/s | {load['ratio_vs_copy']}x | "
            f"{_verdict(load['ratio_vs_copy'] >= 0.5)} |"
        )
        rows.append(
            f"| load | project path >= 5x `to_sql` rows/s | {load['ratio_vs_to_sql']}x | "
            f"{_verdict(load['ratio_vs_to_sql'] >= 5)} |"
        )
    extract = results.get("extract", {})
    if "rss_growth" in extract:
        rows.append(
            f"| extract | peak RSS grows < 1.5x from the small to the large size | "
            f"{extract['rss_growth']}x | {_verdict(extract['rss_growth'] < 1.5)} |"
        )
    parse = results.get("parse", {})
    if "factory_vs_one_task" in parse:
        heavy = parse["heavy_modules_at_parse"]
        rows.append(
            f"| parse | no heavy module imported at parse | {heavy or 'none'} | "
            f"{_verdict(not heavy)} |"
        )
        rows.append(
            f"| parse | factory file <= 1.5x a one-task DAG file | "
            f"{parse['factory_vs_one_task']}x | {_verdict(parse['factory_vs_one_task'] <= 1.5)} |"
        )
    datasets = results.get("datasets", {})
    if "ratio_warm" in datasets:
        for cache in ("warm", "cold"):
            ratio = datasets[f"ratio_{cache}"]
            rows.append(
                f"| datasets | per-DAG parse of {datasets['datasets']} datasets, cache {cache}, "
                f"<= 1.5x a one-task DAG file's | {ratio}x | {_verdict(ratio <= 1.5)} |"
            )
        sched = datasets["scheduler"]
        rows.append(
            f"| datasets | the scheduler creates every DAG's daily run | "
            f"{sched['with_scheduled_run']} of {sched['dags']} | "
            f"{_verdict(sched['with_scheduled_run'] == sched['dags'])} |"
        )
    rows += _stream_targets(results.get("stream", {}))
    rows += _scale_targets(results.get("scale", {}))
    year = results.get("year", {})
    if "rss_growth" in year:
        sizes = year["sizes"]
        rows.append(
            f"| year | peak RSS of a year's reload run, {sizes[-1]['records']:,} vs "
            f"{sizes[0]['records']:,} records, <= {year['targets']['rss_growth_max']}x | "
            f"{year['rss_growth']}x ({sizes[-1]['peak_rss_mb']:,} vs {sizes[0]['peak_rss_mb']:,} "
            f"MiB) | {_verdict(year['rss_growth'] <= year['targets']['rss_growth_max'])} |"
        )
    return rows


SCALE_CHECKS = {
    "ui_health": "UI `/api/health` < {ui} s",
    "ui_validation": "UI `/api/runs/<city>/<run>` (Validation tab) < {ui} s",
    "ui_map": "UI `/api/map/<city>` (forecast and 7-day counts) < {ui} s",
    "ui_charts": "UI `/api/charts/<city>` < {ui} s",
    "ui_cities": "UI `/api/cities` < {ui} s",
    "audit_warehouse_side": "partition audit, warehouse side < {audit_warehouse} s",
    "daily_beyond_own_rows": "daily load + views beyond its own rows' cost < {daily_beyond_own} s",
    "retrain_features": "`hotspot_retrain` features for a city-year < {retrain_features} s",
}


def _scale_targets(r: dict[str, Any]) -> list[str]:
    """Issue 22's targets at every size of the `scale` figure."""
    rows = []
    for size in r.get("sizes", []):
        for name, check in size["verdicts"].items():
            label = SCALE_CHECKS.get(name, name).format(**r["targets"])
            rows.append(
                f"| scale | {label} ({size['rows']:,} rows) | {check['seconds']} s | "
                f"{_verdict(check['met'])} |"
            )
    return rows


def _stream_targets(r: dict[str, Any]) -> list[str]:
    """Issue 15's targets, read at the largest size of the `stream` figure."""
    if not r.get("sizes"):
        return []
    large = r["sizes"][-1]
    at = f"{large['records']:,} records"
    targets = r["targets"]
    rows = []
    if "rss_growth" in r:
        rows.append(
            f"| stream | peak RSS of validate and load at the largest size <= "
            f"{targets['rss_growth_max']}x the smallest | {r['rss_growth']}x | "
            f"{_verdict(r['rss_growth'] <= targets['rss_growth_max'])} |"
        )
    dlt_peak = max(_dlt_peak(large[m]["dlt"]) for m in ("first", "update"))
    validate = max(large[m]["citypulse"]["validate_peak_rss_mb"] for m in ("first", "update"))
    if dlt_peak and "validate_peak_vs_dlt_max" in targets:
        most = targets["validate_peak_vs_dlt_max"]
        rows.append(
            f"| stream | peak RSS of validate <= {most}x dlt's ({at}) | {validate:,} vs "
            f"{dlt_peak:,} MiB ({validate / dlt_peak:.2f}x) | "
            f"{_verdict(validate <= most * dlt_peak)} |"
        )
    for mode, label, minimum in (
        ("first", "first load >= {}x raw COPY rows/s", targets["first_vs_copy_min"]),
        ("update", "all updates >= {}x COPY + ON CONFLICT", targets["update_vs_copy_min"]),
    ):
        ratio = large[mode]["vs_copy"]
        rows.append(
            f"| stream | {label.format(minimum)} ({at}) | {ratio}x | {_verdict(ratio >= minimum)} |"
        )
    for mode in ("first", "update"):
        ratio = large[mode]["vs_dlt"]
        if ratio is None:  # dlt skipped
            continue
        rows.append(
            f"| stream | {mode}: >= {targets['vs_dlt_min']}x dlt's rows/s ({at}) | {ratio}x | "
            f"{_verdict(ratio >= targets['vs_dlt_min'])} |"
        )
    return rows


def _dlt_peak(d: dict[str, Any]) -> float:
    return float(max(d.get("peak_rss_mb", 0), d.get("worker_peak_rss_mb", 0)))


def _task_peak(c: dict[str, Any]) -> float:
    return float(max(c["validate_peak_rss_mb"], c["load_peak_rss_mb"]))


def _stream(r: dict[str, Any]) -> list[str]:
    lines = [
        "The same NYC-311 records as the API sends them, in extract parts, loaded side by "
        "side: CityPulse's real `validate` and `load` tasks (each in a process of its own, as "
        "a worker runs them), `dlt` (postgres destination, merge on the key, csv/COPY loader, "
        "2 normalize workers, column types hinted from the contract; its own environment) and "
        "raw COPY of the typed rows validate wrote (updates: COPY into staging + INSERT .. ON "
        "CONFLICT DO UPDATE). Rows/s count every record and every second of validate and "
        "load (the suite's checks included; `without checks` leaves them out). On first loads "
        "validate runs once more under `CITYPULSE_VALIDATE_ENGINE=gx` (the suite on Great "
        "Expectations, as before issue 22), in a process of its own. Peak RSS is each "
        "process's VmHWM; `imported` is the task process's RSS once its modules are imported, "
        "before it reads a record.",
        "",
        "| records | pass | CityPulse rows/s | without checks | dlt rows/s | raw COPY rows/s | "
        "vs COPY | vs dlt | validate peak / imported MiB | load peak / imported MiB | "
        "dlt peak (worker) MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in r["sizes"]:
        for mode, label in (("first", "first load"), ("update", "all updates")):
            sides = size[mode]
            c, d, copy = sides["citypulse"], sides["dlt"], sides["raw_copy"]
            lines.append(
                f"| {size['records']:,} | {label} | {_rate(c['rows_per_s'])} | "
                f"{_rate(c.get('rows_per_s_without_checks', 0))} | "
                f"{_rate(d.get('rows_per_s', 0))} | "
                f"{_rate(copy['rows_per_s'])} | {sides['vs_copy']}x | "
                f"{'-' if sides['vs_dlt'] is None else str(sides['vs_dlt']) + 'x'} | "
                f"{c['validate_peak_rss_mb']:,} / {c['validate_rss_imported_mb']:,} | "
                f"{c['load_peak_rss_mb']:,} / {c['load_rss_imported_mb']:,} | "
                f"{d.get('peak_rss_mb', 0):,} ({d.get('worker_peak_rss_mb', 0):,}) |"
            )
    engines = [
        (size, size["first"]) for size in r["sizes"] if size["first"]["citypulse"].get("gx_engine")
    ]
    if engines:
        lines += [
            "",
            "Validate's engines side by side (first load, same parts, same load task after "
            "it): seconds of validate (of which the suite's checks), its peak / imported RSS, "
            "validate + load against raw COPY, and whether both wrote the same report.",
            "",
            "| records | engine | validate s (checks) | validate peak / imported MiB | "
            "vs COPY | same report |",
            "|---|---|---|---|---|---|",
        ]
        for size, sides in engines:
            c, g = sides["citypulse"], sides["citypulse"]["gx_engine"]
            lines += [
                f"| {size['records']:,} | vectorized | {c['validate_s']} ({c['checks_s']}) | "
                f"{c['validate_peak_rss_mb']:,} / {c['validate_rss_imported_mb']:,} | "
                f"{sides['vs_copy']}x | {g['same_report']} |",
                f"| {size['records']:,} | gx | {g['validate_s']} ({g['checks_s']}) | "
                f"{g['validate_peak_rss_mb']:,} / {g['validate_rss_imported_mb']:,} | "
                f"{sides['gx_engine_vs_copy']}x | {g['same_report']} |",
            ]
    lines += [
        "",
        "Seconds: CityPulse validate (of which the suite's checks) + load; dlt extract / "
        "normalize / load.",
        "",
        "| records | pass | validate (checks) | load | dlt extract / normalize / load | raw COPY |",
        "|---|---|---|---|---|---|",
    ]
    for size in r["sizes"]:
        for mode in ("first", "update"):
            sides = size[mode]
            c, d = sides["citypulse"], sides["dlt"]
            steps = d.get("steps_s", {})
            lines.append(
                f"| {size['records']:,} | {mode} | {c['validate_s']} ({c.get('checks_s')}) | "
                f"{c['load_s']} | {steps.get('extract')} / {steps.get('normalize')} / "
                f"{steps.get('load')} | {sides['raw_copy']['seconds']} |"
            )
    if "rss_growth" in r:
        lines += ["", f"Peak RSS growth from the smallest to the largest size: {r['rss_growth']}x."]
    if "started" in r:
        load = r["load_average"]
        lines += [
            "",
            f"Started {r['started']}; load average (1, 5, 15 min) {load[:3]} at the start and "
            f"{load[3:]} at the end: 2 cores, shared with other work when above ~1.",
            "",
        ]
    return lines


def _load(r: dict[str, Any]) -> list[str]:
    passes = [
        ("first load (all inserts)", "project_insert"),
        ("same keys changed at the portal (all updates)", "project_update"),
    ]
    lines = [
        f"{r['records']:,} NYC-311 records as the API sends them (JSON text, system fields "
        f"included); the table has {r['columns_written']} written columns (41 contract "
        "columns + event_time, event_time_utc, h3_r8, h3_r7, cp_run_id; cp_loaded_at defaults). "
        "Raw COPY and `to_sql` write the same typed rows into an identical empty table "
        "(same columns, key and indexes; `to_sql` only the first rows in key order, as at its "
        "rate all of them would take minutes). Project rows/s exclude the GX suite (its own "
        "figure, `validate`); the `with GX` column includes it.",
        "",
        "| path | rows/s | seconds | with GX: rows/s | inserted / updated / unchanged / rejected |",
        "|---|---|---|---|---|",
    ]
    for label, key in passes:
        p = r[key]
        lines.append(
            f"| project: {label} | {_rate(p['rows_per_s'])} | {p['seconds']} | "
            f"{_rate(p['rows_per_s_with_gx'])} | {p['inserted']:,} / {p['updated']:,} / "
            f"{p['unchanged']:,} / {p['rejected']:,} |"
        )
    for label, key in (("raw COPY", "raw_copy"), ("`pandas.to_sql` (first rows)", "to_sql")):
        samples = r[key].get("samples_s")
        note = f" (mean of {samples} s)" if samples else ""
        lines.append(
            f"| {label} | {_rate(r[key]['rows_per_s'])} | {r[key]['seconds']}{note} | | "
            f"{r[key]['rows']:,} rows |"
        )
    lines += [
        "",
        f"Ratios (first load): **{r['ratio_vs_copy']}x raw COPY**, **{r['ratio_vs_to_sql']}x "
        f"`to_sql`**; updates {r['update_ratio_vs_copy']}x raw COPY. Peak RSS of the "
        f"benchmark process {r['peak_rss_mb']:,} MiB.",
        "",
        "Seconds per stage (the real functions, wrapped; `typing` excludes `h3`; `other` is "
        "task glue: contract loading, masks, audit, commit):",
        "",
    ]
    stages = list(r["project_insert"]["stages_s"])
    lines.append("| pass | " + " | ".join(stages) + " |")
    lines.append("|---" * (len(stages) + 1) + "|")
    for label, key in passes:
        values = r[key]["stages_s"]
        lines.append(
            f"| {label.split(' (')[0]} | " + " | ".join(str(values[s]) for s in stages) + " |"
        )
    return lines


def _extract(r: dict[str, Any]) -> list[str]:
    lines = [
        "Real extract task (`citypulse.dags.steps.extract`, sodapy over HTTP to the stand-in, "
        f"pages of {r['page_size']:,}), each size in a fresh task process.",
        "",
        "| records | pages | seconds | rows/s | RSS after imports (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for size, s in r["sizes"].items():
        lines.append(
            f"| {int(size):,} | {s['pages']} | {s['seconds']} | {_rate(s['rows_per_s'])} | "
            f"{s['rss_after_imports_mb']} | {s['peak_rss_mb']} |"
        )
    lines += ["", f"Peak RSS growth small -> large: **{r['rss_growth']}x**."]
    return lines


def _parse(r: dict[str, Any]) -> list[str]:
    lines = [
        f"`airflow dags report -o json`, each folder in its own CLI process, alternating, "
        f"{r['repeats']} repeat(s); each file of `dags/` alone in its folder, as the DAG "
        f"processor parses it; medians (seconds):",
        "",
        "| file | DAGs | parse seconds | samples |",
        "|---|---|---|---|",
    ]
    for name, seconds in r["file_seconds"].items():
        count = r["dags_per_file"].get(name, "?")
        lines.append(f"| `{name}` | {count} | {seconds} | {r['samples'][name]} |")
    lines += [
        "",
        f"Factory file / one-task file: **{r['factory_vs_one_task']}x** "
        f"({r['factory_per_dag_vs_one_task']}x per DAG)"
        + (
            f"; the same four DAGs written out by hand with TaskFlow `@task` "
            f"(`hand_written.py`): **{r['hand_written_vs_one_task']}x** the one-task "
            f"file, and the factory file is **{r['factory_vs_hand_written']}x** that"
            if "hand_written_vs_one_task" in r
            else ""
        )
        + ". Heavy modules imported "
        f"by a full parse of `dags/`: {r['heavy_modules_at_parse'] or 'none'} "
        f"({r['dags']} DAGs, {r['import_errors']} import errors, DagBag fill "
        f"{r['dagbag_fill_seconds']} s in a fresh interpreter).",
    ]
    return lines


def _datasets(r: dict[str, Any]) -> list[str]:
    per, total, sched = r["per_dag_ms"], r["parse_total_s"], r["scheduler"]
    lines = [
        f"{r['datasets']} contracts (copies of the four under new ids; {r['unplaced']} without "
        f"coordinates, bbox or incidents mapping) feed `dags/{'city_pipelines.py'}`, parsed by "
        "`airflow dags report -o json` in a fresh process"
        + (
            " (Airflow's loaded objects frozen for the garbage collector first, as the DAG "
            "processor's manager does before it forks the processes that parse files)"
            if r.get("gc_frozen")
            else ""
        )
        + ", beside as many one-task DAG files "
        f"(one `EmptyOperator` each); medians of {len(r['samples']['cold'])} repeat(s); "
        f"measured {r.get('measured_at', '')}, load average {r.get('load_average', '?')}:",
        "",
        "| side | DAGs | parse seconds (all files) | per DAG (ms) | samples |",
        "|---|---|---|---|---|",
    ]
    for side, label in (
        ("cold", "`city_pipelines.py`, parse cache cold"),
        ("warm", "`city_pipelines.py`, parse cache warm"),
        ("one_task", "one-task DAG files"),
        ("same_shape", "the same shape in plain Airflow"),
    ):
        if side not in total:
            continue
        lines.append(
            f"| {label} | {r['dags_found'][side]} | {total[side]} | {per[side]} | "
            f"{r['samples'][side]} |"
        )
    lines += [
        "",
        f"Per DAG: **{r['ratio_cold']}x** the one-task file's with the cache cold, "
        f"**{r['ratio_warm']}x** warm.",
        "",
        *_datasets_marginal(r),
        f"A real `airflow dag-processor` and `airflow scheduler` on a fresh PostgreSQL metadata "
        f"database (every DAG unpaused at creation, pools at 0 slots so no task runs; `db "
        f"migrate` {sched['migrate_s']} s): all {sched['dags']} DAGs serialized after "
        f"{sched['all_serialized_s']} s, {sched['with_scheduled_run']} with their scheduled "
        f"daily run after {sched['all_runs_s']} s.",
    ]
    return lines


def _datasets_marginal(r: dict[str, Any]) -> list[str]:
    """Each side's cost split into its slope per further DAG and its fixed part per parse
    (results measured before the split have neither)."""
    if "marginal_per_dag_ms" not in r:
        return []
    marginal, fixed, tasks = r["marginal_per_dag_ms"], r["fixed_s"], r["tasks_per_dag"]
    lines = [
        f"Each side parsed at 1 DAG as well: the slope from 1 to {r['datasets']} DAGs is what "
        "each further DAG costs, the rest is paid once per parse however many DAGs the side "
        "has (imports; for the city file also the contract cache and the first `Asset`'s "
        "provider lookup):",
        "",
        "| side | tasks per DAG | each further DAG (ms) | per task (ms) | fixed per parse (s) |",
        "|---|---|---|---|---|",
    ]
    for side, label in (
        ("cold", "`city_pipelines.py`, cache cold"),
        ("warm", "`city_pipelines.py`, cache warm"),
        ("one_task", "one-task DAG files"),
        ("same_shape", "the same shape in plain Airflow (one file)"),
    ):
        if side not in marginal:
            continue
        per_task = round(marginal[side] / max(tasks[side], 1), 2)
        lines.append(f"| {label} | {tasks[side]} | {marginal[side]} | {per_task} | {fixed[side]} |")
    lines += [
        "",
        f"Each further DAG: **{r['marginal_ratio_cold']}x** the one-task file's cold, "
        f"**{r['marginal_ratio_warm']}x** warm.",
        "",
    ]
    if "ratio_same_shape" in r:
        lines += [
            "The same shape in plain Airflow (no CityPulse code: one file of DAGs with the "
            "city DAGs' three Params, which Airflow validates against their JSON schemas for "
            "every scheduled DAG, and six `EmptyOperator`s wired as the six steps) costs "
            f"**{r['ratio_same_shape']}x** the one-task file per DAG, "
            f"**{r['marginal_ratio_same_shape']}x** per further DAG: what Airflow itself "
            "charges for a DAG of this shape.",
            "",
        ]
    return lines


def _year(r: dict[str, Any]) -> list[str]:
    lines = [
        f"One reload run (params `start_date` {r['first_day']}, `end_date` {r['last_day']}: "
        "365 local days) of `nyc_311` through `dag.test()` in a task process of its own (every "
        "task in that process, the real DAG from `dags/`), the stand-in portal over HTTP in "
        "the figure's process, a fresh warehouse per size. Peak RSS is that process's VmHWM: "
        "the high-water mark of all its tasks. Records/s: every record over the run's wall "
        "seconds (all tasks, one worker).",
        "",
        "| records | state | rows in the warehouse | wall s | records/s | extract s | "
        "validate s | load s | reconcile s | build_views s | RSS imported MiB | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["sizes"]:
        t = run["tasks"]

        def sec(task: str, tasks: dict[str, Any] = t) -> Any:
            return tasks.get(task, {}).get("seconds", "-")

        lines.append(
            f"| {run['records']:,} | {run['state']} | {run['warehouse_rows']:,} | "
            f"{run['wall_s']} | {_rate(run['records_per_s'])} | {sec('extract')} | "
            f"{sec('validate')} | {sec('load')} | {sec('reconcile')} | {sec('build_views')} | "
            f"{run['rss_after_imports_mb']:,} | {run['peak_rss_mb']:,} |"
        )
    load = r["load_average"]
    lines += [
        "",
        f"Peak RSS growth for {r['size_growth']}x the records: **{r['rss_growth']}x** (target "
        f"<= {r['targets']['rss_growth_max']}x). The stand-in's own peak (this process, "
        f"holding the records): {r['standin_peak_rss_mb']:,} MiB.",
        "",
        f"Started {r['started']}; load average (1, 5, 15 min) {load[:3]} at the start and "
        f"{load[3:]} at the end.",
    ]
    return lines


def _validate(r: dict[str, Any]) -> list[str]:
    gx, pd = r["gx"], r["pandas"]
    vec = r.get("vectorized", {})
    return [
        "The suite `citypulse.pipeline.validate.suite` builds from the NYC-311 contract, on "
        f"{r['rows']:,} typed rows: on Great Expectations (`CITYPULSE_VALIDATE_ENGINE=gx`), on "
        "the `vectorized` engine (GX's verdicts in pandas/NumPy, what validate runs) and as "
        "the same row checks in plain pandas (same process).",
        "",
        "| | Great Expectations | vectorized | plain pandas |",
        "|---|---|---|---|",
        f"| import (once per task process) | {gx['import_s']} s | (pandas already loaded) | "
        "(pandas already loaded) |",
        f"| first ephemeral context | {gx['first_context_s']} s | - | - |",
        f"| run on 1,000 rows (fixed cost per run) | {gx['run_small_s']} s | "
        f"{vec.get('run_small_s')} s | {pd['run_small_s']} s |",
        f"| run on {r['rows']:,} rows | {gx['run_s']} s | {vec.get('run_s')} s | {pd['run_s']} s |",
        f"| per 100,000 rows (marginal) | {gx['per_100k_rows_s']} s | "
        f"{vec.get('per_100k_rows_s')} s | {pd['per_100k_rows_s']} s |",
        f"| fixed cost per task (import + small run) | {gx['fixed_per_task_s']} s | - | - |",
        "",
        f"GX / vectorized on the full batch: **{r.get('gx_vs_vectorized')}x**; same report and "
        f"per-row reasons: {r.get('same_report_and_reasons')}. GX / pandas: "
        f"**{r['gx_vs_pandas']}x**; both flag the same rows: {r['same_rejects']} "
        f"({r['rejected_rows']:,} rejected).",
    ]


def _dag_day(r: dict[str, Any]) -> list[str]:
    first = r["first_run"]
    second = r["second_run"] or {"tasks": {}, "wall_s": None}
    lines = [
        f"`dag.test()` of `{r['dataset']}` for one local day of {r['records']:,} records "
        "(stand-in over HTTP, fresh warehouse, SQLite metadata DB). The first run pays the "
        "tasks' imports in this process; the second (next day) is warm.",
        "",
        "| task | first run (s) | second run (s) |",
        "|---|---|---|",
    ]
    for task, t in first["tasks"].items():
        warm = second["tasks"].get(task, {})
        lines.append(f"| {task} | {t['seconds']} ({t['state']}) | {warm.get('seconds')} |")
    lines.append(f"| **dag.test wall** | {first['wall_s']} | {second['wall_s']} |")
    return lines


def _retrain(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}"]
    lines = [
        f"Feature building (`retrain.load_known`) and the rolling-origin evaluation "
        f"(`backtest.run_backtest`, {r.get('folds', 1)} folds of {r.get('test_days', 14)} test "
        f"days: {', '.join(r['models'])}) per city on {r['days']} loaded days "
        f"(history loaded by `sample_history` beforehand, untimed: {r['history_load_s']} s).",
        "",
        "| city | hex-days | train / test rows (all folds) | features (s) | training (s) |",
        "|---|---|---|---|---|",
    ]
    for city, c in r["cities"].items():
        if "skipped" in c:
            lines.append(f"| {city} | skipped: {c['skipped']} | | | |")
            continue
        lines.append(
            f"| {city} | {c['hex_days']:,} | {c['train_rows']:,} / {c['test_rows']:,} | "
            f"{c['features_s']} | {c['training_s']} |"
        )
    lines += [
        "",
        f"All cities: **{r['total_s']} s**, peak RSS {r['peak_rss_mb']:,} MiB.",
    ]
    return lines


def _audit(r: dict[str, Any]) -> list[str]:
    lines = [
        f"One partition audit (`reconcile.audit`) per city over {r['days']} days of history "
        f"({r['first_day']} .. {r['last_day']}): in the steady state (every day agrees), and "
        f"after the portal removed one record on each of {r['edited_days']} old days. The "
        "grouped per-day query is answered by the stand-in's Python; a live portal's differs.",
        "",
        "| city | records | days checked | steady audit (s) | of which the grouped portal "
        "query (s) | repair audit (s) | days repaired | s per repaired day |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for city, c in r["cities"].items():
        lines.append(
            f"| {city} | {c['records']:,} | {c['days_checked']} | {c['steady_s']} | "
            f"{c['portal_grouped_query_s']} | {c['repair_s']} | {c['repaired_days']} | "
            f"{c['repair_s_per_day']} |"
        )
    return lines


def _scale(r: dict[str, Any]) -> list[str]:
    sizes = r["sizes"]
    own = sizes[0]["daily"]["own_rows_s"]
    lines = [
        "NYC 311 grown in SQL (copies of a generated week, shifted back week by week, about "
        "8,000 records a day) to each size, with a daily run per day, 5 open rejects and a "
        "published forecast; then the daily operations timed on it (seconds; UI calls: the "
        "best of 3 in process). The day's own cost: the same records loaded into an empty "
        f"warehouse and its views built: {own:.2f} s.",
        "",
        "| operation | " + " | ".join(f"{s['rows']:,} rows" for s in sizes) + " | growth |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]
    growth = r.get("growth", {})

    def row(label: str, values: list[Any], key: str | None = None) -> None:
        grew = growth.get(key) if key else None
        lines.append(
            f"| {label} | " + " | ".join(str(v) for v in values) + f" | "
            f"{'' if grew is None else f'{grew}x'} |"
        )

    row("days of history", [s["weeks"] * 7 for s in sizes])
    row("database size (GB)", [s["database_gb"] for s in sizes])
    row("growing the table in SQL (s)", [s["grow_s"] for s in sizes])
    row("daily load (s)", [s["daily"]["load_s"] for s in sizes])
    row("daily views (s)", [s["daily"]["views_s"] for s in sizes])
    row(
        "daily load + views beyond its own rows (s)",
        [s["daily"]["beyond_own_s"] for s in sizes],
        "daily_beyond_own_rows",
    )
    row("one backfill day's load (s)", [s["backfill_day"]["load_s"] for s in sizes])
    row(
        "audit, warehouse side (s)",
        [s["audit"]["warehouse_side_s"] for s in sizes],
        "audit_warehouse_side",
    )
    row(
        "audit, steady state, portal answer given (s)",
        [s["audit"]["steady_audit_s"] for s in sizes],
    )
    for name in ("health", "validation", "map", "charts", "cities"):
        row(f"UI `{name}` (s)", [s["ui"][name]["best_s"] for s in sizes], f"ui_{name}")
    row(
        "retrain features, one city-year (s)",
        [s["retrain"]["features_s"] for s in sizes],
        "retrain_features",
    )
    if growth:
        lines += [
            "",
            f"Growth: the larger size's seconds over the smaller's; rows grew {growth['rows']}x.",
        ]
    return lines


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "load": ("1. `load`: the load path against raw COPY and `to_sql`", _load),
    "extract": ("2. `extract`: streaming pages, bounded memory", _extract),
    "parse": ("3. `parse`: what parsing `dags/` costs", _parse),
    "validate": (
        "4. `validate`: Great Expectations, the vectorized engine, plain pandas",
        _validate,
    ),
    "dag_day": ("5. `dag_day`: one city day through `dag.test()`", _dag_day),
    "retrain": ("6. `retrain`: features and 6-fold evaluation, 4 cities x 365 days", _retrain),
    "audit": ("7. `audit`: one partition audit per dataset", _audit),
    "stream": ("8. `stream`: CityPulse, dlt and raw COPY at each size, bounded memory", _stream),
    "datasets": ("9. `datasets`: 100 datasets, their parse and their daily runs", _datasets),
    "scale": ("10. `scale`: the daily operations on years of NYC 311", _scale),
    "year": ("11. `year`: a year of NYC 311 in one reload run, bounded memory", _year),
}


def _machine_lines(m: dict[str, Any], seconds: float, smoke: bool) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return [
        f"- Date: {m['date']}; whole run {seconds:.0f} s" + (" (SMOKE sizes)" if smoke else ""),
        f"- CPU: {m['cpus']} x {m['cpu_model']}; memory {m['memory']}",
        f"- Load average when the run started: {m['load_average_at_start']} (other work on "
        "the machine shifts both sides of each comparison alike)",
        f"- Python {m['python']}, PostgreSQL {m['postgresql']}, {m['os']}",
        f"- {packages}",
    ]


def render(
    results: list[dict[str, Any]], machine_info: dict[str, Any], seconds: float, smoke: bool
) -> str:
    by_figure = {r["figure"]: r for r in results}
    lines = [
        "# CityPulse benchmarks",
        "",
        "Generated by `make bench` (`python -m benchmarks`); do not edit by hand: the profile "
        "notes at the end come from `benchmarks/FINDINGS.md`.",
        "",
        "## How to reproduce",
        "",
        "```bash",
        "make bench                                   # every figure, writes BENCHMARKS.md",
        "PYTHONPATH=include python -m benchmarks --only load,parse",
        "PYTHONPATH=include python -m benchmarks --smoke --out /tmp/B.md   # tiny sizes",
        "PYTHONPATH=include python -m benchmarks.load   # one figure, its JSON line only",
        "PYTHONPATH=include python -m benchmarks --rerender   # after editing FINDINGS.md",
        "CITYPULSE_BENCH_SIZES=200000,2000000 make bench   # `stream` at 2 million records too",
        "```",
        "",
        "PostgreSQL: `CITYPULSE_BENCH_PG` (a libpq DSN) or `host=127.0.0.1 port=5432 "
        "user=postgres dbname=postgres` when reachable, else an embedded server; every figure "
        "works in a fresh database it drops afterwards. Each figure runs in a subprocess of its "
        "own (clean imports and peak RSS); every comparison runs side by side in that process.",
        "",
        "## Machine",
        "",
        *_machine_lines(machine_info, seconds, smoke),
        "",
        "## Targets",
        "",
        *_targets(by_figure),
        "",
    ]
    for figure, (title, section) in SECTIONS.items():
        if figure not in by_figure:
            continue
        result = by_figure[figure]
        lines += [f"## {title}", ""]
        if "error" in result:
            lines += ["Failed:", "", "```", result["error"], "```"]
        else:
            lines += section(result)
        lines.append("")
    if FINDINGS.exists():
        lines += [FINDINGS.read_text(encoding="utf-8").rstrip(), ""]
    run = {"run": {"machine": machine_info, "seconds": round(seconds, 1), "smoke": smoke}}
    lines += [
        "## Raw results",
        "",
        "<details><summary>the run, then one JSON line per figure</summary>",
        "",
        RAW_START,
        json.dumps(run, default=str),
        *(json.dumps(r, default=str) for r in results),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def rerender(path: Path) -> None:
    """Rewrite a report from its own raw results (after editing FINDINGS.md, say)."""
    text = path.read_text(encoding="utf-8")
    block = text.split(RAW_START + "\n", 1)[1].split("\n```", 1)[0]
    first, *figures = (json.loads(line) for line in block.splitlines() if line.strip())
    run = first["run"]
    write(path, figures, run["machine"], run["seconds"], smoke=run["smoke"])


def write(
    path: Path,
    results: list[dict[str, Any]],
    machine_info: dict[str, Any],
    seconds: float,
    *,
    smoke: bool,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, machine_info, seconds, smoke), encoding="utf-8")
