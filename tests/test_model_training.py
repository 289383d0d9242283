"""Training is deterministic (fixed seeds, sorted inputs): the same counts give the same
metrics, whatever order the warehouse returns them in; the metrics mean what they say.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from helpers import write_incident_counts

CITY = "test_city"
FIRST = date(2025, 3, 3)
DAYS = 70
CENTRE = "872a100d6ffffff"


def synthetic_counts(seed: int = 11) -> list[tuple[str, date, int]]:
    """Poisson counts around a persistent hotspot, with a weekly rhythm (no zero rows)."""
    import h3
    import numpy as np

    rng = np.random.default_rng(seed)
    cells = sorted(h3.grid_disk(CENTRE, 3))
    rows = []
    for cell in cells:
        rate = 0.3 + 6.0 * np.exp(-(h3.grid_distance(CENTRE, cell) ** 2) / 2)
        for offset in range(DAYS):
            day = FIRST + timedelta(days=offset)
            n = int(rng.poisson(rate * (1.2 if day.weekday() < 5 else 0.7)))
            if n:
                rows.append((cell, day, n))
    return rows


def write(dsn: str, rows: list[tuple[str, date, int]]) -> None:
    write_incident_counts(dsn, [(CITY, cell, cell, day, n) for cell, day, n in rows])


@pytest.fixture
def counts_dsn(fresh_warehouse: str) -> Iterator[str]:
    write(fresh_warehouse, synthetic_counts())
    yield fresh_warehouse


def train_all(dsn: str, model_kind: str) -> tuple[dict[str, Any], Any]:
    import psycopg2

    from citypulse.model.backtest import evaluate_fold
    from citypulse.model.config import RetrainConfig
    from citypulse.model.features import build_features, plan_windows, split

    config = RetrainConfig(training_days=28, test_days=14, model_kind=model_kind)
    windows = plan_windows(FIRST, FIRST + timedelta(days=DAYS - 1), config)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        frame = build_features(cur, CITY, "h3_r7", windows, {date(2025, 4, 18)})
    conn.close()
    evaluation = evaluate_fold(split(frame, windows, config.hotspot_quantile), windows, config)
    return evaluation.metrics, evaluation


@pytest.mark.parametrize("model_kind", ["random_forest", "hist_gradient_boosting"])
def test_same_data_gives_the_same_metrics(counts_dsn: str, model_kind: str) -> None:
    import numpy as np

    from citypulse.model.config import BASELINE_KINDS
    from citypulse.model.models import probabilities

    first, evaluation = train_all(counts_dsn, model_kind)
    second, again = train_all(counts_dsn, model_kind)
    assert first == second
    assert list(first) == [*BASELINE_KINDS, "logistic_regression", model_kind]
    assert evaluation.thresholds == again.thresholds
    test = evaluation.split.test
    np.testing.assert_array_equal(
        probabilities(evaluation.estimators[model_kind], test),
        probabilities(again.estimators[model_kind], test),
    )
    # The warehouse returning rows in another physical order changes nothing either.
    write(counts_dsn, list(reversed(synthetic_counts())))
    third, _ = train_all(counts_dsn, model_kind)
    assert third == first


def test_learned_models_beat_persistence_on_a_persistent_hotspot(counts_dsn: str) -> None:
    metrics, _ = train_all(counts_dsn, "random_forest")
    for kind in ("random_forest", "logistic_regression"):
        assert metrics[kind]["pr_auc"] > metrics["persistence"]["pr_auc"], kind
        assert metrics[kind]["roc_auc"] > 0.5
    for values in metrics.values():
        assert set(values) >= {"precision", "recall", "f1", "roc_auc", "pr_auc", "pai", "pei"}
        assert 0 < values["pei"] <= 1


def _frame(incidents: list[list[int]], scores: list[list[float]]) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rows = [
        (pd.Timestamp(FIRST + timedelta(days=d)), f"cell{h:02d}", n, s)
        for d, (day_counts, day_scores) in enumerate(zip(incidents, scores, strict=True))
        for h, (n, s) in enumerate(zip(day_counts, day_scores, strict=True))
    ]
    frame = pd.DataFrame(rows, columns=["local_day", "h3_cell", "incidents", "score"])
    return frame, np.asarray(frame["score"], dtype=float)


def test_top_share_capture_counts_the_incidents_of_each_days_top_hexes() -> None:
    from citypulse.model.metrics import top_share_capture

    # Ten hexes a day: the top 10 % is one hexagon per day.
    day_one = [5, 1, 0, 0, 0, 0, 0, 0, 0, 4]
    day_two = [0, 2, 0, 0, 0, 0, 0, 0, 0, 8]
    scores_one = [0.9, 0.8, 0, 0, 0, 0, 0, 0, 0, 0.1]  # flags the hex with 5
    scores_two = [0.9, 0.1, 0, 0, 0, 0, 0, 0, 0, 0.2]  # flags a hex with 0
    frame, score = _frame([day_one, day_two], [scores_one, scores_two])
    assert top_share_capture(frame, score) == pytest.approx(5 / 20)
    # Ten hexagons tied for one place share it: each holds a tenth of a flag, so a flat
    # score captures a tenth of the incidents (by cell id it would have had day one's 5).
    frame, flat = _frame([day_one, day_two], [[0.0] * 10, [0.0] * 10])
    assert top_share_capture(frame, flat) == pytest.approx(0.1)


def test_evaluate_perfect_and_single_class_scores() -> None:
    import numpy as np

    from citypulse.model.metrics import evaluate
    from citypulse.model.models import Scores

    frame, _ = _frame([[3, 0, 0, 1, 0, 0, 0, 0, 0, 0]], [[0.0] * 10])
    frame["hotspot"] = (frame["incidents"] >= 3).astype(int)
    perfect = frame["hotspot"].to_numpy(dtype=float)
    metrics = evaluate(frame, Scores(perfect, perfect.astype(bool)))
    assert metrics["pr_auc"] == metrics["roc_auc"] == metrics["f1"] == 1.0
    assert metrics["top10_capture"] == pytest.approx(0.75) and metrics["pai"] == pytest.approx(7.5)
    assert metrics["flagged_share"] == 0.1 and metrics["cells"] == 10
    frame["hotspot"] = 0
    none = evaluate(frame, Scores(np.zeros(10), np.zeros(10, dtype=bool)))
    assert none["roc_auc"] is None and none["pr_auc"] is None and none["positives"] == 0


def test_baselines_score_expected_counts_and_flag_at_a_threshold_tuned_on_training() -> None:
    import numpy as np
    import pandas as pd

    from citypulse.model.models import baseline_score, flag_threshold

    frame = pd.DataFrame(
        {"lag_1": [0.0, 2.0, 5.0], "mean_28": [0.5, 3.5, 1.0], "kernel_density": [0.2, 1.0, 3.0]}
    )
    assert baseline_score("persistence", frame).tolist() == [0.0, 2.0, 5.0]
    assert baseline_score("trailing_mean", frame).tolist() == [0.5, 3.5, 1.0]
    assert baseline_score("kernel_density", frame).tolist() == [0.2, 1.0, 3.0]
    # Best F1 on training rows: hotspots are the rows scoring 0.6 and above.
    truth = np.array([0, 0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.5, 0.9])
    assert flag_threshold(truth, score) == pytest.approx(0.6)
    assert flag_threshold(np.zeros(3, dtype=int), np.ones(3)) == float("inf")


def test_kernel_density_smooths_the_28_day_means_over_two_rings() -> None:
    import math

    import h3
    import pandas as pd

    from citypulse.model.features import add_kernel_density

    ring1, ring2 = sorted(h3.grid_ring(CENTRE, 1)), sorted(h3.grid_ring(CENTRE, 2))
    day = pd.Timestamp(FIRST)
    frame = pd.DataFrame(
        {
            "h3_cell": [CENTRE, ring1[0], ring2[0]],
            "local_day": [day] * 3,
            "mean_28": [6.0, 3.0, 1.0],
        }
    )
    out = add_kernel_density(frame).set_index("h3_cell")
    w1, w2 = math.exp(-0.5), math.exp(-2.0)
    total = 1 + 6 * w1 + 12 * w2  # every hexagon of the two rings, seen or not
    assert out.loc[CENTRE, "kernel_density"] == pytest.approx((6 + 3 * w1 + 1 * w2) / total)


def test_near_repeat_decays_recent_incidents_around_the_hexagon() -> None:
    """nr_<tau> of a day is the exponentially weighted mean of the kernel-smoothed counts of
    the days before it (weight (1 - a) a^k for k days back, a = exp(-1/tau))."""
    import math

    import h3
    import numpy as np
    import pandas as pd

    from citypulse.model.features import add_near_repeat

    ring1 = sorted(h3.grid_ring(CENTRE, 1))[0]
    far = h3.latlng_to_cell(40.0, -75.0, 7)  # Philadelphia: far from the centre
    days = [pd.Timestamp(FIRST + timedelta(days=k)) for k in range(6)]
    counts = {CENTRE: [2, 0, 0, 1, 0, 0], ring1: [0, 3, 0, 0, 0, 0], far: [5, 5, 5, 5, 5, 5]}
    frame = pd.DataFrame(
        [(c, d, float(n[i])) for c, n in counts.items() for i, d in enumerate(days)],
        columns=["h3_cell", "local_day", "incidents"],
    )
    out = add_near_repeat(frame).set_index(["h3_cell", "local_day"])
    w1, w2 = math.exp(-0.5), math.exp(-2.0)
    total = 1 + 6 * w1 + 12 * w2
    smoothed = [(counts[CENTRE][i] + w1 * counts[ring1][i]) / total for i in range(6)]
    a = math.exp(-1 / 3)
    expected = sum((1 - a) * a ** (5 - 1 - d) * smoothed[d] for d in range(5))
    assert out.loc[(CENTRE, days[5]), "nr_3"] == pytest.approx(expected)
    assert out.loc[(CENTRE, days[0]), "nr_3"] == 0  # nothing before the first day
    # The far hexagon's incidents never reach the centre.
    assert np.isfinite(out["nr_3"]).all()


def test_near_repeat_fits_its_excitation_and_nests_the_long_run_mean() -> None:
    import pandas as pd

    from citypulse.model.config import NEAR_REPEAT_TAUS
    from citypulse.model.models import baseline_score, fit_near_repeat

    recent = {f"nr_{tau}": [0.0, 2.0, 0.0, 2.0] for tau in NEAR_REPEAT_TAUS}
    # Counts follow the recent incidents: excitation helps.
    excited = pd.DataFrame({"mean_365": [0.5] * 4, "incidents": [0, 3, 0, 3], **recent})
    params = fit_near_repeat(excited)
    assert params["theta"] > 0
    # Counts ignore them: theta 0, the 365-day mean itself.
    flat = excited.assign(incidents=[1, 0, 1, 0])
    assert fit_near_repeat(flat)["theta"] == 0
    assert baseline_score("near_repeat", flat, {"tau": 3, "theta": 0.0}).tolist() == [0.5] * 4


def test_calibration_maps_scores_to_observed_shares() -> None:
    import numpy as np

    from citypulse.model.models import Calibration, fit_calibration

    score = np.array([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])
    truth = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    calibration = fit_calibration(score, truth)
    probability = calibration.apply(score)
    assert np.all(np.diff(probability) >= 0) and probability.min() >= 0 and probability.max() <= 1
    assert probability.mean() == pytest.approx(truth.mean())  # isotonic keeps the base rate
    assert Calibration.from_dict(calibration.as_dict()) == calibration
