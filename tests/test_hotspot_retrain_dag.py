"""User story: every Monday `hotspot_retrain` retrains each fresh city's hotspot model on the
warehouse's hex-day counts, proves it against honest baselines over several folds, keeps a
registry of every model in PostgreSQL, and publishes the candidate's forecast for the next
week as map-ready GeoJSON only when its lift holds (else the best baseline's, and says so);
a city whose data went stale is skipped with a warning while the others still train; a
backtest run as of a past day reaches it whatever the run's logical date.

Real parts: PostgreSQL, the Airflow metadata DB and `dag.test()`; eight weeks of generated
records for all four cities go in through the city DAGs' typing and load code.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from citypulse import settings
from conftest import ROOT, query
from helpers import airflow_cli, contracts_with_unplaced

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIES = ["chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"]
LAST_DAY = date(2025, 11, 9)  # a Sunday: the run on Monday 2025-11-10 sees it as yesterday
WEEKS = 12
RECORDS_PER_DAY = 200
FIRST_RUN = datetime(2025, 11, 10, 12, tzinfo=UTC)
SECOND_RUN = FIRST_RUN + timedelta(days=7)
STALE_CITY = "seattle_crime"  # gets no data for the second week
LAG_DAYS = {"chicago_crime": 7}  # the contracts' publication lags
# Twelve weeks: Chicago's data ends 8 days before the run (its publication lag, 7 days), then
# 2 folds of 7 test days, a 7-day gap before each, 14 training days and a warm-up of 28 days
# + lag + 6 (a horizon-7 row reads features 6 days older) = 83 days.
CONF = {"training_days": 14, "test_days": 7, "folds": 2}
# A backtest as of an earlier day, run with a logical date before the old start_date.
BACKTEST_RUN = datetime(2024, 12, 30, 12, tzinfo=UTC)
BACKTEST_CONF = {**CONF, "cities": ["nyc_311"], "as_of": "2025-11-10", "publish": False}


@pytest.fixture(scope="module")
def model_warehouse(module_warehouse: str) -> str:
    """A database of this module's own, wired in as the `warehouse` connection."""
    return module_warehouse


@pytest.fixture(scope="module")
def dag(airflow_db: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return bag.dags["hotspot_retrain"]


@pytest.fixture(scope="module")
def runs(dag: Any, model_warehouse: str, contracts: list[Any]) -> dict[str, Any]:
    """Week 1: all four cities fresh. Week 2: a week more data for all but STALE_CITY."""
    from citypulse_dev.sample_history import load_history

    first = LAST_DAY - timedelta(days=7 * WEEKS - 1)
    load_history(contracts, first, LAST_DAY, dsn=model_warehouse, records_per_day=RECORDS_PER_DAY)
    first_run = dag.test(logical_date=FIRST_RUN, run_conf=CONF)
    predictions_after_first = prediction_rows(model_warehouse)
    fresh = [c for c in contracts if c.dag_id != STALE_CITY]
    load_history(
        fresh,
        LAST_DAY + timedelta(days=1),
        LAST_DAY + timedelta(days=7),
        dsn=model_warehouse,
        records_per_day=RECORDS_PER_DAY,
    )
    second_run = dag.test(logical_date=SECOND_RUN, run_conf=CONF)
    predictions_after_second = prediction_rows(model_warehouse)
    backtest = dag.test(logical_date=BACKTEST_RUN, run_conf=BACKTEST_CONF)
    return {
        "first": first_run,
        "second": second_run,
        "backtest": backtest,
        "predictions_after_first": predictions_after_first,
        "predictions_after_second": predictions_after_second,
    }


def prediction_rows(dsn: str) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT city, h3_cell, day, probability, model_run_id FROM citypulse.hotspot_predictions "
        "ORDER BY city, day, h3_cell",
    )


def states(dag_run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def city_states(dag_run: Any, task_id: str, cities: list[str]) -> dict[str, str]:
    """The state of a mapped task per city (map indexes follow the sorted city list)."""
    found = states(dag_run)
    return {city: found[(f"city.{task_id}", i)] for i, city in enumerate(cities)}


def model_runs(dsn: str, dag_run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = query(
        dsn,
        "SELECT city, model_kind, role, metrics, promoted, promoted_at, decision, artifact_path, "
        "id, train_start, train_end, test_start, test_end, label_threshold "
        "FROM citypulse.model_runs WHERE dag_run_id = %s",
        (dag_run_id,),
    )
    names = [
        "role",
        "metrics",
        "promoted",
        "promoted_at",
        "decision",
        "artifact_path",
        "id",
        "train_start",
        "train_end",
        "test_start",
        "test_end",
        "label_threshold",
    ]
    return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}


def test_dag_shape(dag: Any, contracts: list[Any]) -> None:
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.timetable.expression == "0 12 * * 1"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert {"citypulse", "model"} <= set(dag.tags)
    assert dag.doc_md and "hotspot" in dag.doc_md
    assert dag.owner == "citypulse"
    assert dag.on_failure_callback
    for task in dag.tasks:
        assert task.retries >= 2 and task.retry_exponential_backoff
    freshness = dag.get_task("city.check_freshness")
    assert sorted(a.uri for a in freshness.inlets) == sorted(
        f"postgres://warehouse:5432/citypulse/citypulse/{c.table}" for c in contracts
    )
    assert dag.get_task("city.train").upstream_task_ids == {"city.check_freshness"}
    assert dag.get_task("city.predict").upstream_task_ids == {"city.train"}
    assert dag.get_task("report").trigger_rule == "none_failed"
    assert dag.params["cities"] == CITIES
    assert set(dag.params.keys()) == {
        "cities",
        "as_of",
        "training_days",
        "test_days",
        "folds",
        "h3_resolution",
        "model_kind",
        "max_staleness_days",
        "champion_tolerance",
        "hotspot_quantile",
        "min_coverage",
        "min_test_positives",
        "chance_factor",
        "publish",
    }
    # Any day a city's data covers has task instances (the earliest city starts in 2001).
    assert dag.start_date == datetime(2001, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cities", ["atlantis"]),
        ("cities", []),
        ("h3_resolution", 9),
        ("model_kind", "neural_net"),
        ("training_days", 3),
        ("as_of", 20221224),
        ("folds", 0),
        ("hotspot_quantile", 1.0),
        ("min_coverage", 1.5),
        ("publish", "yes"),
    ],
)
def test_params_reject_invalid_values(dag: Any, name: str, value: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = copy.deepcopy(dag.params.get_param(name))
    with pytest.raises(ParamValidationError):
        param.resolve(value)


def test_params_are_the_configs_fields(dag: Any) -> None:
    from citypulse.model.config import DEFAULTS, RetrainConfig

    for name in RetrainConfig.model_fields:
        if name != "cities":
            assert dag.params[name] == getattr(DEFAULTS, name), name
    assert copy.deepcopy(dag.params.get_param("as_of")).resolve("2022-12-24") == "2022-12-24"


def test_first_run_trains_every_city_and_registers_every_model(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    run = runs["first"]
    assert str(run.state) == "success", states(run)
    assert set(city_states(run, "check_freshness", CITIES).values()) == {"success"}
    assert set(city_states(run, "train", CITIES).values()) == {"success"}
    from citypulse.model.config import BASELINE_KINDS

    registered = model_runs(model_warehouse, run.run_id)
    kinds = sorted([*BASELINE_KINDS, "logistic_regression", "hist_gradient_boosting"])
    for city in CITIES:
        assert sorted(k for c, k in registered if c == city) == kinds
        candidate = registered[(city, "hist_gradient_boosting")]
        assert candidate["role"] == "candidate" and candidate["decision"]
        assert registered[(city, "persistence")]["artifact_path"] is None
        for kind in ("hist_gradient_boosting", "logistic_regression"):
            key = registered[(city, kind)]["artifact_path"]
            assert key == f"models/{city}/{kind}/v{registered[(city, kind)]['id']}"
            folder = settings.DATA_DIR / key  # under the default storage root
            assert (folder / "model.joblib").is_file() and (folder / "metadata.json").is_file()
        windows = {(m["train_start"], m["train_end"], m["test_start"], m["test_end"])
                   for (c, _), m in registered.items() if c == city}  # fmt: skip
        # The newest fold's windows; the older fold tested on 10-27..11-02. Chicago's data as
        # it stood on 11-10 ends on 11-02 (7 days' lag), and its training 8 days before its test.
        expected = (date(2025, 10, 20), date(2025, 11, 2), date(2025, 11, 3), LAST_DAY)
        lag = timedelta(days=7)
        if city == "chicago_crime":
            expected = (date(2025, 10, 6), date(2025, 10, 19), date(2025, 10, 27), LAST_DAY - lag)
        assert windows == {expected}
        metrics = candidate["metrics"]
        for name in ("precision", "recall", "f1", "roc_auc", "pr_auc", "top10_capture", "pai"):
            assert metrics[name] is not None, name
            assert len(metrics["folds"]) == 2 and metrics["sd"][name] is not None, name
        assert 0 < metrics["pei"] <= 1


def test_tree_model_beats_persistence_on_pr_auc(runs: dict[str, Any], model_warehouse: str) -> None:
    registered = model_runs(model_warehouse, runs["first"].run_id)
    for city in CITIES:
        tree = registered[(city, "hist_gradient_boosting")]["metrics"]["pr_auc"]
        persistence = registered[(city, "persistence")]["metrics"]["pr_auc"]
        assert tree > persistence, city


def test_every_trained_city_publishes_its_candidate_or_best_baseline(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    registered = model_runs(model_warehouse, runs["first"].run_id)
    # Published models of the first run may have been retired by the second: ask who was.
    published = {c: (k, m) for (c, k), m in registered.items() if m["promoted_at"]}
    assert sorted(published) == CITIES
    predictions = runs["predictions_after_first"]
    assert {r[0] for r in predictions} == set(CITIES)
    expected_days = {LAST_DAY + timedelta(days=d) for d in range(1, 8)}
    assert set(city_states(runs["first"], "predict", CITIES).values()) == {"success"}
    for city, (kind, run) in published.items():
        candidate = registered[(city, "hist_gradient_boosting")]
        if kind == "hist_gradient_boosting":
            assert "published, the lift holds" in run["decision"]
        else:  # refused: the best baseline by mean PR AUC is published, and says why
            assert run["role"] == "baseline" and "refused" in candidate["decision"]
            baselines = {k: m["metrics"]["pr_auc"] for (c, k), m in registered.items()
                         if c == city and m["role"] == "baseline"}  # fmt: skip
            # (mean_365 and mean_730 tie on 12 weeks of history: the first listed is published)
            assert baselines[kind] == max(baselines.values())
            assert run["decision"] == candidate["decision"]
        rows = [r for r in predictions if r[0] == city]
        assert {r[2] for r in rows} == expected_days
        assert {r[4] for r in rows} == {run["id"]}
        cells = {r[1] for r in rows}
        assert len(rows) == 7 * len(cells)
        assert all(0.0 <= r[3] <= 1.0 for r in rows)


def test_publication_view_names_the_published_model_per_city(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    rows = query(
        model_warehouse,
        "SELECT city, resolution, model_run_id, model_kind, role, decision, as_of, test_end, "
        "metrics, baselines FROM citypulse.hotspot_publication ORDER BY city",
    )
    assert [r[0] for r in rows] == CITIES
    champions = dict(
        query(model_warehouse, "SELECT city, id FROM citypulse.model_runs WHERE promoted")
    )
    from citypulse.model.config import BASELINE_KINDS

    for city, resolution, run_id, _, role, decision, as_of, test_end, metrics, baselines in rows:
        assert run_id == champions[city] and resolution == 7 and role in {"candidate", "baseline"}
        assert decision and metrics["pr_auc"] is not None
        assert sorted(baselines) == sorted(BASELINE_KINDS)
        lag = LAG_DAYS.get(city, 0)  # the data as it stood on as_of ends lag + 1 days before
        assert as_of == test_end + timedelta(days=1 + lag)


def test_a_backtest_reaches_a_past_day_and_publishes_nothing(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    run = runs["backtest"]
    assert str(run.state) == "success", states(run)
    assert city_states(run, "train", ["nyc_311"]) == {"nyc_311": "success"}
    assert city_states(run, "predict", ["nyc_311"]) == {"nyc_311": "skipped"}
    registered = model_runs(model_warehouse, run.run_id)
    candidate = registered[("nyc_311", "hist_gradient_boosting")]
    assert candidate["test_end"] == LAST_DAY  # the day before as_of, not the data's last
    assert candidate["decision"].startswith("backtest (publish false), nothing published")
    assert not any(m["promoted_at"] for m in registered.values())
    assert prediction_rows(model_warehouse) == runs["predictions_after_second"]


def test_hotspot_map_gives_geojson_hexagons(runs: dict[str, Any], model_warehouse: str) -> None:
    rows = query(
        model_warehouse,
        "SELECT h3_cell, geometry, feature FROM citypulse.hotspot_map ORDER BY h3_cell LIMIT 50",
    )
    assert rows
    import h3

    for cell, geometry, feature in rows:
        assert geometry["type"] == "Polygon"
        ring = geometry["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == len(h3.cell_to_boundary(cell)) + 1
        lat, lon = h3.cell_to_latlng(cell)
        assert all(abs(p[0] - lon) < 0.1 and abs(p[1] - lat) < 0.1 for p in ring)  # [lon, lat]
        assert feature["type"] == "Feature" and feature["properties"]["h3_cell"] == cell


def test_stale_city_is_skipped_and_the_others_still_train(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    run = runs["second"]
    assert str(run.state) == "success", states(run)
    fresh = [c for c in CITIES if c != STALE_CITY]
    assert city_states(run, "check_freshness", CITIES) == {
        **dict.fromkeys(fresh, "success"),
        STALE_CITY: "skipped",
    }
    assert city_states(run, "train", CITIES)[STALE_CITY] == "skipped"
    assert states(run)[("report", -1)] == "success"
    registered = model_runs(model_warehouse, run.run_id)
    assert sorted({c for c, _ in registered}) == fresh
    for city in fresh:
        test_end = LAST_DAY + timedelta(7 - LAG_DAYS.get(city, 0))
        assert registered[(city, "hist_gradient_boosting")]["test_end"] == test_end


def test_one_champion_per_city_and_decisions_recorded(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    champions = query(
        model_warehouse,
        "SELECT city, count(*) FROM citypulse.model_runs WHERE promoted GROUP BY city",
    )
    assert champions and all(n == 1 for _, n in champions)
    undecided = query(
        model_warehouse,
        "SELECT count(*) FROM citypulse.model_runs WHERE role = 'candidate' AND decision IS NULL",
    )
    assert undecided == [(0,)]
    predictions = prediction_rows(model_warehouse)
    assert len(predictions) == len({(r[0], r[1], r[2]) for r in predictions})  # no duplicates


def test_publishing_the_forecast_again_leaves_no_stale_row(
    runs: dict[str, Any], model_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.model.config import RetrainConfig
    from citypulse.model.features import plan_windows
    from citypulse.model.retrain import publish_forecast

    city = "nyc_311"
    contract = next(c for c in contracts if c.dag_id == city)
    ((last, champion),) = query(
        model_warehouse,
        "SELECT test_end, id FROM citypulse.model_runs WHERE city = %s AND promoted",
        (city,),
    )
    config = RetrainConfig(**CONF)
    windows = plan_windows(LAST_DAY - timedelta(days=7 * WEEKS - 1), last, config)  # as the DAG
    before = prediction_rows(model_warehouse)
    # A row an earlier model wrote for a hexagon this forecast does not cover.
    query(
        model_warehouse,
        "INSERT INTO citypulse.hotspot_predictions (city, h3_cell, resolution, day, probability, "
        "predicted_hotspot, model_run_id, features_as_of) VALUES (%s, 'stale-cell', 7, %s, 0.9, "
        "true, %s, %s)",
        (city, last + timedelta(days=3), champion, last),
    )
    published = publish_forecast(contract, config, windows, None, model_warehouse)
    assert published["predictions"] > 0
    assert prediction_rows(model_warehouse) == before


def test_a_dataset_without_a_place_is_skipped_by_name(
    airflow_db: str, fresh_warehouse: str, tmp_path: Path
) -> None:
    """Story: a dataset without coordinates sits beside the mapped cities; the weekly retrain
    does not offer it, says in its log why it is not modelled, and the run still succeeds."""
    folder = tmp_path / "contracts"
    unplaced = contracts_with_unplaced(folder)
    done = airflow_cli("dags", "test", "hotspot_retrain", FIRST_RUN.isoformat(), contracts=folder)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert (
        f"HOTSPOT_RETRAIN_SKIPPED city={unplaced.dag_id}: not modelled, its contract has no "
        "coordinates (latitude/longitude)"
    ) in output
    trained = query(fresh_warehouse, "SELECT DISTINCT city FROM citypulse.retrain_gates")
    assert unplaced.dag_id not in {city for (city,) in trained}
