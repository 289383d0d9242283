"""User story: every Monday `hotspot_retrain` retrains each fresh city's hotspot model on the
warehouse's hex-day counts, proves it against honest baselines, keeps a registry of every
model in PostgreSQL, and publishes the champion's forecast for the next week as map-ready
GeoJSON; a city whose data went stale is skipped with a warning while the others still train.

Real parts: PostgreSQL, the Airflow metadata DB and `dag.test()`; eight weeks of generated
records for all four cities go in through the city DAGs' typing and load code.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from citypulse import settings
from conftest import ROOT, query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIES = ["chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"]
LAST_DAY = date(2025, 11, 9)  # a Sunday: the run on Monday 2025-11-10 sees it as yesterday
WEEKS = 8
RECORDS_PER_DAY = 200
FIRST_RUN = datetime(2025, 11, 10, 12, tzinfo=UTC)
SECOND_RUN = FIRST_RUN + timedelta(days=7)
STALE_CITY = "seattle_crime"  # gets no data for the second week
# Eight weeks = 28 warm-up days + 14 training days + 14 test days.
CONF = {"training_days": 14, "test_days": 14}


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
    from citypulse.model.sample_history import load_history

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
    return {
        "first": first_run,
        "second": second_run,
        "predictions_after_first": predictions_after_first,
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
        "training_days",
        "test_days",
        "h3_resolution",
        "model_kind",
        "max_staleness_days",
        "champion_tolerance",
        "hotspot_quantile",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cities", ["atlantis"]),
        ("cities", []),
        ("h3_resolution", 9),
        ("model_kind", "neural_net"),
        ("training_days", 3),
    ],
)
def test_params_reject_invalid_values(dag: Any, name: str, value: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = copy.deepcopy(dag.params.get_param(name))
    with pytest.raises(ParamValidationError):
        param.resolve(value)


def test_first_run_trains_every_city_and_registers_every_model(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    run = runs["first"]
    assert str(run.state) == "success", states(run)
    assert set(city_states(run, "check_freshness", CITIES).values()) == {"success"}
    assert set(city_states(run, "train", CITIES).values()) == {"success"}
    registered = model_runs(model_warehouse, run.run_id)
    kinds = ["hist_gradient_boosting", "logistic_regression", "persistence", "trailing_mean"]
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
        assert windows == {(date(2025, 10, 13), date(2025, 10, 26), date(2025, 10, 27), LAST_DAY)}
        metrics = candidate["metrics"]
        for name in ("precision", "recall", "f1", "roc_auc", "pr_auc", "top10_capture", "pai"):
            assert metrics[name] is not None, name


def test_tree_model_beats_persistence_on_pr_auc(runs: dict[str, Any], model_warehouse: str) -> None:
    registered = model_runs(model_warehouse, runs["first"].run_id)
    for city in CITIES:
        tree = registered[(city, "hist_gradient_boosting")]["metrics"]["pr_auc"]
        persistence = registered[(city, "persistence")]["metrics"]["pr_auc"]
        assert tree > persistence, city


def test_champions_forecast_the_next_week_per_hex(
    runs: dict[str, Any], model_warehouse: str
) -> None:
    registered = model_runs(model_warehouse, runs["first"].run_id)
    # Champions of the first run may have been retired by the second: ask who was promoted.
    promoted = {c: m["id"] for (c, _), m in registered.items() if m["promoted_at"]}
    assert promoted, "at least one city's candidate should become champion"
    predictions = runs["predictions_after_first"]
    assert {r[0] for r in predictions} == set(promoted)
    expected_days = {LAST_DAY + timedelta(days=d) for d in range(1, 8)}
    predict_states = city_states(runs["first"], "predict", CITIES)
    for city in CITIES:
        assert predict_states[city] == ("success" if city in promoted else "skipped")
    for city, run_id in promoted.items():
        rows = [r for r in predictions if r[0] == city]
        assert {r[2] for r in rows} == expected_days
        assert {r[4] for r in rows} == {run_id}
        cells = {r[1] for r in rows}
        assert len(rows) == 7 * len(cells)
        assert all(0.0 <= r[3] <= 1.0 for r in rows)


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
        assert registered[(city, "hist_gradient_boosting")]["test_end"] == LAST_DAY + timedelta(7)


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


def test_publishing_the_forecast_again_replaces_rows(
    runs: dict[str, Any], model_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.model.config import RetrainConfig
    from citypulse.model.features import plan_windows
    from citypulse.model.retrain import publish_forecast

    city = query(model_warehouse, "SELECT min(city) FROM citypulse.model_runs WHERE promoted")[0][0]
    contract = next(c for c in contracts if c.dag_id == city)
    ((last,),) = query(
        model_warehouse, "SELECT max(test_end) FROM citypulse.model_runs WHERE city = %s", (city,)
    )
    config = RetrainConfig(**CONF)
    windows = plan_windows(LAST_DAY - timedelta(days=7 * WEEKS - 1), last, config)  # as the DAG
    before = prediction_rows(model_warehouse)
    published = publish_forecast(contract, config, windows, model_warehouse)
    assert published["predictions"] > 0
    assert prediction_rows(model_warehouse) == before
