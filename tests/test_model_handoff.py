"""The hotspot retrain hand-off (`citypulse.model.handoff`): JSON in XCom and back unchanged
from task to task, and a hand-off of another version refused saying how to recover."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from citypulse.exceptions import HandoffError
from citypulse.model.handoff import HANDOFF_VERSION, CityRetrain

REFERENCE = datetime(2025, 9, 1, 4, tzinfo=UTC)
TRAINED: dict[str, Any] = {  # retrain.train_city's result
    "city": "nyc_311",
    "dag_run_id": "scheduled__2025-09-01T12:00:00+00:00",
    "resolution": 7,
    "as_of": "2025-09-01",
    "windows": {
        "feature_start": "2025-06-01",
        "train_start": "2025-06-29",
        "train_end": "2025-08-24",
        "test_start": "2025-08-25",
        "test_end": "2025-08-31",
        "lag_days": 0,
    },
    "label_threshold": 3.0,
    "model_run_ids": {"persistence": 1, "logistic": 2},
    "candidate": "logistic",
    "published": "logistic",
    "decision": "candidate beats the best baseline",
    "pr_auc": {"persistence": 0.31, "logistic": None},
    "known_at": REFERENCE.isoformat(),
}
FORECAST: dict[str, Any] = {  # retrain.publish_forecast's result
    "city": "nyc_311",
    "model_run_id": 2,
    "model_kind": "logistic",
    "role": "candidate",
    "days": ["2025-09-01", "2025-09-02"],
    "predictions": 40,
    "flagged": 3,
}


def fresh() -> CityRetrain:
    from citypulse.model.freshness import Freshness

    return CityRetrain.of_freshness(
        Freshness(
            city="nyc_311",
            timezone="America/New_York",
            reference=REFERENCE,
            last_success_at=datetime(2025, 9, 1, 3, tzinfo=UTC),
            first_loaded_day=date(2025, 6, 1),
            last_loaded_day=date(2025, 8, 31),
            newest_event_local=datetime(2025, 8, 31, 23, 50),
        )
    )


def through_xcom(handoff: CityRetrain, task: str) -> CityRetrain:
    return CityRetrain.from_xcom(json.loads(json.dumps(handoff.to_xcom())), task=task)


def test_each_task_hands_the_next_the_same_object_through_xcom() -> None:
    first = fresh()
    handed = through_xcom(first, "train")
    assert handed == first and handed.version == HANDOFF_VERSION
    assert handed.fresh() == first.fresh() and handed.fresh().last_day == date(2025, 8, 31)

    trained = through_xcom(handed.with_trained(TRAINED), "predict")
    assert trained.require_trained().known_at == REFERENCE
    assert trained.windows().test_end == date(2025, 8, 31)
    assert trained.windows().serving_day == date(2025, 9, 1)

    done = through_xcom(trained.with_forecast(FORECAST), "report")
    assert done.forecast is not None and done.forecast.days[0] == date(2025, 9, 1)
    assert done.to_xcom()["trained"]["windows"] == TRAINED["windows"]


def test_a_handoff_not_yet_trained_cannot_predict() -> None:
    with pytest.raises(HandoffError, match="not trained"):
        fresh().windows()


@pytest.mark.parametrize(
    ("handed", "named"),
    [
        ({"city": "nyc_311", "reference": "2025-09-01T04:00:00+00:00"}, "no hand-off version"),
        ({"version": HANDOFF_VERSION + 1}, f"version {HANDOFF_VERSION + 1}"),
    ],
)
def test_a_handoff_of_another_version_is_refused_saying_how_to_recover(
    handed: Any, named: str
) -> None:
    with pytest.raises(HandoffError) as caught:
        CityRetrain.from_xcom(handed, task="train")
    message = str(caught.value)
    assert named in message and f"reads version {HANDOFF_VERSION}" in message
    assert "clear the city from `check_freshness`" in message
    assert not caught.value.transient


def test_a_malformed_handoff_is_refused() -> None:
    with pytest.raises(HandoffError, match="malformed"):
        CityRetrain.from_xcom({**fresh().to_xcom(), "run_dir": "/tmp/x"}, task="predict")


def test_no_handoff_at_all_says_the_task_before_has_not_succeeded() -> None:
    with pytest.raises(HandoffError, match="the task before it has not succeeded") as caught:
        CityRetrain.from_xcom(None, task="train")
    assert "another CityPulse version" not in str(caught.value)
