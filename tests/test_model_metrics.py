"""Area scores the way the field computes them: PAI divides the capture by the share of the
area actually flagged (ceil(share x cells) of the cells), PEI by the best possible capture of
as many cells, ties at the cut share the remaining places; Brier score and reliability
describe the calibrated probability.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

FIRST = date(2025, 3, 3)


def frame_of(incidents: list[list[int]], scores: list[list[float]]) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rows = [
        (pd.Timestamp(FIRST + timedelta(days=d)), f"cell{h:03d}", n, s)
        for d, (day_counts, day_scores) in enumerate(zip(incidents, scores, strict=True))
        for h, (n, s) in enumerate(zip(day_counts, day_scores, strict=True))
    ]
    frame = pd.DataFrame(rows, columns=["local_day", "h3_cell", "incidents", "score"])
    return frame, np.asarray(frame["score"], dtype=float)


def test_pai_at_the_flagged_share_is_capture_over_flagged_cells_per_cell() -> None:
    """123 hexagons: the top 10 % is 13 of them (10.57 % of the area), as in the issue."""
    import numpy as np

    from citypulse.model.metrics import area_score, evaluate
    from citypulse.model.models import Scores

    rng = np.random.default_rng(5)
    counts = rng.poisson(0.3, 123).tolist()
    scores = (np.asarray(counts) + rng.random(123)).tolist()  # distinct scores
    frame, score = frame_of([counts], [scores])
    area = area_score(frame, score, 0.10)
    assert (area.flagged_cells, area.cells) == (13, 123)
    assert area.pai == area.capture / (13 / 123)
    frame["hotspot"] = (frame["incidents"] >= 1).astype(int)
    metrics = evaluate(frame, Scores(score, score > 1))
    assert metrics["pai"] == round(area.capture / (13 / 123), 6)
    assert metrics["pai"] != pytest.approx(metrics["top10_capture"] / 0.10)
    assert metrics["flagged_share"] == round(13 / 123, 6)
    one = area_score(frame, score, 0.01)
    assert (one.flagged_cells, metrics["pai_1"]) == (2, round(one.capture / (2 / 123), 6))


def test_ties_at_the_cut_share_the_remaining_places() -> None:
    """Ten cells, one place (10 %): the top cell alone; then three tied for two places of
    20 % get two thirds of a flag each, whatever their cell ids."""
    from citypulse.model.metrics import area_score

    counts = [0, 3, 0, 0, 0, 0, 0, 6, 0, 0]
    frame, score = frame_of([counts], [[0, 5, 0, 0, 0, 0, 0, 5, 0, 9]])
    # 10 %: cell 9 (score 9, 0 incidents) is flagged alone: nothing captured.
    assert area_score(frame, score, 0.10).captured == 0
    # 30 %: cell 9, then cells 1 and 7 tied for the other two places: both fully in.
    assert area_score(frame, score, 0.30).captured == 9
    # 20 %: one place left for two tied cells: half a flag each.
    twenty = area_score(frame, score, 0.20)
    assert twenty.captured == pytest.approx(4.5) and twenty.flagged_cells == 2
    # Renaming the cells (reordering the ids) changes nothing.
    frame["h3_cell"] = frame["h3_cell"].iloc[::-1].to_numpy()
    assert area_score(frame, score, 0.20).captured == pytest.approx(4.5)


def test_pei_compares_with_the_best_cells_of_the_same_number() -> None:
    from citypulse.model.metrics import area_score

    counts = [[4, 3, 2, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 5, 1]]
    scores = [[0, 9, 8, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 9, 8]]
    frame, score = frame_of(counts, scores)
    area = area_score(frame, score, 0.20)  # two cells a day
    assert area.captured == 3 + 2 + 5 + 1 and area.best == 4 + 3 + 5 + 1
    assert area.pei == pytest.approx(11 / 13)


def test_brier_and_reliability_of_calibrated_probabilities() -> None:
    import numpy as np

    from citypulse.model.metrics import brier, reliability

    truth = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    probability = np.array([0.01, 0.01, 0.03, 0.03, 0.6, 0.6, 0.6, 0.6])
    assert brier(truth, probability) == pytest.approx(
        (2 * 0.01**2 + 0.03**2 + 0.97**2 + 0.6**2 + 3 * 0.4**2) / 8
    )
    table = reliability(truth, probability)
    assert [(b["low"], b["rows"], b["observed"]) for b in table] == [
        (0.0, 2, 0.0),
        (0.02, 2, 0.5),
        (0.5, 4, 0.75),
    ]
    assert table[2]["predicted"] == pytest.approx(0.6)
