"""Figure `scale`: the daily operations on a warehouse holding years of NYC 311.

Per size N (rows; `CITYPULSE_BENCH_SCALE_ROWS`, comma-separated, default 10 and 40 million;
smoke: two tiny sizes), a fresh warehouse:

- a seed week of generated, well-formed NYC 311 records (the generator's NYC profile) loaded
  through the real load path; then, in SQL, copies of those rows shifted back week by week
  (each copy with keys of its own) until the table holds N rows, at about 8,000 a day as
  the real dataset; one record in 20 with an earlier version in the history; a successful
  daily run per day, 5 open rejects, a past audit, a published forecast (benchmarks/
  scale_fixtures.sql);
- timed on it: the next day's load and views (`load_typed_rows` then `build_views`, as a
  daily run does), and the same records loaded into an empty warehouse (their own cost);
  a backfill day (an old day's records loaded); the partition audit's warehouse side (the
  queries `reconcile.audit` makes of the warehouse) and the whole audit with the portal's
  per-day answer given (steady state: the portal's side is a live portal's grouped query,
  timed by the `audit` figure against the stand-in); every UI page's API call (in process,
  as tests/helpers.ui_get); `hotspot_retrain`'s feature query for the city's last year.

Each time is printed against its target with a verdict, and how it grows from the smaller
size to the larger.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import harness

log = logging.getLogger("benchmarks.scale")

ROWS_ENV = "CITYPULSE_BENCH_SCALE_ROWS"
FULL_ROWS = (10_000_000, 40_000_000)
SMOKE_ROWS = (20_000, 40_000)
CITY = "nyc_311"
# The seed: a week of generated records, copied COPIES times per day (about NYC's 8,000).
SEED_LAST_DAY = date(2025, 10, 12)
SEED_DAYS = 7
FULL_PER_DAY, SMOKE_PER_DAY = 2_000, 60
COPIES = 4
WEEKS_PER_BATCH = 26
UI_REPEATS = 3
HERE = Path(__file__).resolve().parent

# Targets at every size: seconds.
TARGETS = {
    "ui": 1.0,
    "audit_warehouse": 10.0,
    "daily_beyond_own": 30.0,
    "retrain_features": 30.0,
}


def sizes(smoke: bool) -> list[int]:
    wanted = os.environ.get(ROWS_ENV)
    if wanted and not smoke:
        return [int(n) for n in wanted.split(",") if n.strip()]
    return list(SMOKE_ROWS if smoke else FULL_ROWS)


def _sql(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = function()
    return round(time.perf_counter() - began, 3), result


def _contracts() -> tuple[Any, list[Any]]:
    from citypulse.contracts.contract import load_contracts

    contracts = load_contracts()[0]
    return next(c for c in contracts if c.dag_id == CITY), contracts


def _records(contract: Any, first: date, last: date, seed: int, per_day: int) -> Any:
    """The generator's well-formed records of the days, typed (the frame a load takes)."""
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.sample_history import well_formed_records

    records = well_formed_records(contract, first, last, seed=seed, records_per_day=per_day)
    batch = type_records(contract, records)
    frame = batch.frame[~batch.rejected_mask]
    # The generator repeats a few keys (a record sent twice); one load takes each key once.
    return frame.drop_duplicates(subset=[contract.key], keep="last")


def _load(dsn: str, contract: Any, frame: Any, run_id: str, first: date, last: date) -> int:
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect

    window = window_for_dates(first.isoformat(), last.isoformat(), contract.timezone)
    with tempfile.TemporaryDirectory(prefix="citypulse-scale-") as folder, connect(dsn) as conn:
        root = StorageRoot(Path(folder).as_uri())
        return load_typed_rows(conn, contract, frame, run_id, window, root).loaded


def _views(dsn: str, contract: Any, contracts: list[Any]) -> None:
    """What the daily run's `views` task does (the views; where CityPulse caches them, the
    city's stale charts too)."""
    from citypulse.pipeline import views

    if hasattr(views, "build_city_views"):
        views.build_city_views(contract, contracts, dsn)
        return
    from citypulse.warehouse.connection import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        views.build_views(cur, contract, contracts)


def grow(dsn: str, contract: Any, target_rows: int) -> dict[str, Any]:
    """Copies of the seed rows, shifted back week by week, until the table holds about
    `target_rows`; the first day of the history."""
    import psycopg2
    from psycopg2 import sql

    from citypulse.settings import SCHEMA

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    table = sql.Identifier(SCHEMA, contract.table)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE cp_seed AS SELECT * FROM {table.as_string(conn)}")
        cur.execute(
            f"SELECT count(*), max({sql.Identifier(contract.key).as_string(conn)}) FROM cp_seed"
        )
        seed_rows, max_key = cur.fetchone()
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (SCHEMA, contract.table),
        )
        columns = cur.fetchall()
        stride = 10 ** len(str(max_key))
        expressions = []
        for name, kind in columns:
            column = sql.Identifier("s", name)
            if name == contract.key:
                expressions.append(
                    sql.SQL("{} + (w * %(copies)s + c)::bigint * {}").format(
                        column, sql.Literal(stride)
                    )
                )
            elif kind.startswith("timestamp"):
                expressions.append(sql.SQL("{} - w * interval '7 days'").format(column))
            elif name == "cp_run_id":
                expressions.append(sql.SQL("'bench_scale_grow'"))
            else:
                expressions.append(column)
        statement = sql.SQL(_sql("scale_grow.sql")).format(
            table=table,
            columns=sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns),
            expressions=sql.SQL(", ").join(expressions),
            seed=sql.Identifier("cp_seed"),
        )
        weeks = max(1, -(-target_rows // (seed_rows * COPIES)))
        began = time.perf_counter()
        for last_week in range(weeks - 1, -1, -WEEKS_PER_BATCH):
            first_week = max(0, last_week - WEEKS_PER_BATCH + 1)
            cur.execute(
                statement,
                {"first_week": first_week, "last_week": last_week, "copies": COPIES},
            )
            log.info(
                "scale: weeks %s..%s grown (%.0f s)",
                first_week,
                last_week,
                time.perf_counter() - began,
            )
        cur.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
        cur.execute(sql.SQL("SELECT count(*), min(event_time)::date FROM {}").format(table))
        rows, first_day = cur.fetchone()
    conn.close()
    return {
        "rows": rows,
        "seed_rows": seed_rows,
        "weeks": weeks,
        "first_day": first_day,
        "grow_s": round(time.perf_counter() - began, 1),
    }


def fixtures(dsn: str, contract: Any, first_day: date, daily_run: str) -> None:
    """Years of runs, edits, rejects, an audit and a forecast (benchmarks/scale_fixtures.sql)."""
    from psycopg2 import sql

    from citypulse.model.registry import ensure_registry
    from citypulse.settings import SCHEMA
    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.tables import history_table, table_columns

    names = table_columns(contract)
    statement = sql.SQL(_sql("scale_fixtures.sql")).format(
        schema=sql.Identifier(SCHEMA),
        table=sql.Identifier(SCHEMA, contract.table),
        history=sql.Identifier(SCHEMA, history_table(contract)),
        key=sql.Identifier(contract.key),
        columns=sql.SQL(", ").join(sql.Identifier(n) for n in names),
        current=sql.SQL(", ").join(sql.Identifier("t", n) for n in names),
    )
    with connect(dsn) as conn, conn.cursor() as cur:
        ensure_registry(cur)
        cur.execute(
            statement,
            {
                "dag_id": contract.dag_id,
                "timezone": contract.timezone,
                "first_day": first_day,
                "last_day": SEED_LAST_DAY,
                "run_id": daily_run,
            },
        )
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(SCHEMA, "ingest_runs")))


def audit_sides(dsn: str, contract: Any) -> dict[str, Any]:
    """The warehouse side of a partition audit (the queries `reconcile.audit` makes of the
    warehouse), then the whole steady-state audit with the portal's answer given."""
    from citypulse.pipeline import reconcile
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect

    def warehouse_side() -> dict[date, Any]:
        with connect(dsn) as conn, conn.cursor() as cur:
            reconcile.covered_days(cur, contract)
            days = reconcile.warehouse_days(cur, contract)
            reconcile.verified_days(cur, contract)
            reconcile.disputes(cur, contract)
        return days

    warehouse_s, days = _timed(warehouse_side)
    original = reconcile.portal_days
    # The portal agrees with the warehouse on every day (steady state), minus the 5 open
    # rejects' records it holds: counted here as the warehouse counts them.
    reconcile.portal_days = lambda _contract, _client: dict(days)  # type: ignore[assignment]
    try:
        whole_s, result = _timed(
            lambda: reconcile.audit(
                contract, "bench_scale_audit_run", StorageRoot.configured(), "bench/scale"
            )
        )
    finally:
        reconcile.portal_days = original  # type: ignore[assignment]
    return {
        "warehouse_side_s": warehouse_s,
        "steady_audit_s": whole_s,
        "days_checked": result.days_checked,
        "days_differing": result.days_differing,
    }


def ui_calls(daily_run: str) -> dict[str, Any]:
    """Every UI page's API call in process, as a logged-in user: first and best of a few."""
    from fastapi.testclient import TestClient

    from citypulse.ui.app import app, get_user

    paths = {
        "health": "/api/health",
        "validation": f"/api/runs/{CITY}/{daily_run}",
        "map": f"/api/map/{CITY}",
        "charts": f"/api/charts/{CITY}",
        "cities": "/api/cities",
    }
    app.dependency_overrides[get_user] = lambda: object()
    calls: dict[str, Any] = {}
    try:
        client = TestClient(app)
        for name, path in paths.items():
            seconds = []
            for _ in range(UI_REPEATS):
                took, response = _timed(lambda path=path: client.get(path))
                assert response.status_code == 200, (path, response.status_code, response.text)
                seconds.append(took)
            calls[name] = {"first_s": seconds[0], "best_s": min(seconds)}
            if name == "map":
                calls[name]["observed_cells"] = len(response.json()["observed"])
    finally:
        app.dependency_overrides.clear()
    return calls


def retrain_features(dsn: str, contract: Any) -> dict[str, Any]:
    """`hotspot_retrain`'s feature query (`retrain.load_known`) for the city's last year."""
    from citypulse.model import features, retrain
    from citypulse.model.config import RetrainConfig

    config = RetrainConfig(training_days=365, test_days=28, folds=1)
    first = SEED_LAST_DAY - timedelta(days=365 + 28 + features.WARMUP_DAYS)
    windows = features.feature_span(features.plan_folds(first, SEED_LAST_DAY, config))
    seconds, (frame, _) = _timed(lambda: retrain.load_known(contract, windows, config, None, dsn))
    return {"features_s": seconds, "hex_days": len(frame)}


def size_figure(rows: int, per_day: int, own: dict[str, float]) -> dict[str, Any]:
    from citypulse.warehouse.connection import connect

    contract, contracts = _contracts()
    seed_first = SEED_LAST_DAY - timedelta(days=SEED_DAYS - 1)
    next_day = SEED_LAST_DAY + timedelta(days=1)
    daily_run = f"scheduled__{next_day.isoformat()}"
    with harness.fresh_database("scale") as dsn:
        seed = _records(contract, seed_first, SEED_LAST_DAY, seed=11, per_day=per_day)
        _load(dsn, contract, seed, "bench_scale_seed", seed_first, SEED_LAST_DAY)
        grown = grow(dsn, contract, rows)
        fixtures(dsn, contract, grown["first_day"], daily_run)
        _views(dsn, contract, contracts)
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            (size_bytes,) = cur.fetchone()
        day = _records(contract, next_day, next_day, seed=12, per_day=per_day * COPIES)
        load_s, loaded = _timed(lambda: _load(dsn, contract, day, daily_run, next_day, next_day))
        views_s, _ = _timed(lambda: _views(dsn, contract, contracts))
        old_day = grown["first_day"] + timedelta(days=(next_day - grown["first_day"]).days // 2)
        old = _records(contract, old_day, old_day, seed=13, per_day=per_day * COPIES)
        backfill_s, backfilled = _timed(
            lambda: _load(dsn, contract, old, f"backfill__{old_day}", old_day, old_day)
        )
        audit = audit_sides(dsn, contract)
        ui = ui_calls(daily_run)
        retrain = retrain_features(dsn, contract)
    daily_s = load_s + views_s
    return {
        **grown,
        "database_gb": round(size_bytes / 1e9, 2),
        "daily": {
            "records": loaded,
            "load_s": load_s,
            "views_s": views_s,
            "own_rows_s": own["load_s"] + own["views_s"],
            "beyond_own_s": round(daily_s - own["load_s"] - own["views_s"], 3),
        },
        "backfill_day": {"day": old_day, "records": backfilled, "load_s": backfill_s},
        "audit": audit,
        "ui": ui,
        "retrain": retrain,
    }


def own_cost(per_day: int) -> dict[str, float]:
    """The next day's records loaded into an empty warehouse, and its views built."""
    contract, contracts = _contracts()
    next_day = SEED_LAST_DAY + timedelta(days=1)
    day = _records(contract, next_day, next_day, seed=12, per_day=per_day * COPIES)
    with harness.fresh_database("scale_empty") as dsn:
        _views(dsn, contract, contracts)
        load_s, _ = _timed(lambda: _load(dsn, contract, day, "empty", next_day, next_day))
        views_s, _ = _timed(lambda: _views(dsn, contract, contracts))
    return {"load_s": load_s, "views_s": views_s}


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    """Each timed call of one size against its target."""
    checks = {f"ui_{name}": (call["best_s"], TARGETS["ui"]) for name, call in result["ui"].items()}
    checks["audit_warehouse_side"] = (
        result["audit"]["warehouse_side_s"],
        TARGETS["audit_warehouse"],
    )
    checks["daily_beyond_own_rows"] = (
        result["daily"]["beyond_own_s"],
        TARGETS["daily_beyond_own"],
    )
    checks["retrain_features"] = (result["retrain"]["features_s"], TARGETS["retrain_features"])
    return {name: {"seconds": s, "target_s": t, "met": s < t} for name, (s, t) in checks.items()}


def growth(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """Larger size's seconds over the smaller's, per check (rows grew by `rows`)."""
    out: dict[str, Any] = {"rows": round(large["rows"] / max(small["rows"], 1), 2)}
    for name, check in large["verdicts"].items():
        before = small["verdicts"][name]["seconds"]
        out[name] = round(check["seconds"] / before, 2) if before > 0 else None
    return out


def run(smoke: bool) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    per_day = SMOKE_PER_DAY if smoke else FULL_PER_DAY
    harness.prepare_airflow_db()  # the health page reads the runs' states from Airflow
    own = own_cost(per_day)
    results = []
    for rows in sizes(smoke):
        began = time.perf_counter()
        result = size_figure(rows, per_day, own)
        result["verdicts"] = verdicts(result)
        result["size_wall_s"] = round(time.perf_counter() - began, 1)
        results.append(result)
        log.info("scale: %s rows done in %.0f s", rows, result["size_wall_s"])
        # Each size as it is done (a long run's first size survives a timeout of its last).
        with (harness.workdir("scale") / "sizes.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(result, default=str) + "\n")
    return {
        "started": datetime.now().isoformat(timespec="seconds"),
        "own_rows": own,
        "sizes": results,
        "targets": TARGETS,
        "all_met": all(c["met"] for r in results for c in r["verdicts"].values()),
        "growth": growth(results[0], results[-1]) if len(results) > 1 else {},
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("scale", run)
