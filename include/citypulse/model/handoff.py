"""What one task of a city's retrain tells the next, in XCom: `CityRetrain`.

One frozen, versioned object, as the city DAGs hand a RunManifest: `check_freshness` writes
it with the city's freshness, `train` adds what it trained and published, `predict` adds the
forecast it wrote. A hand-off of another version is refused with a message saying how to
recover. Light (pydantic and the standard library only): the DAG file may name it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from citypulse.exceptions import HandoffError
from citypulse.versioned import Frozen, read_versioned

if TYPE_CHECKING:
    from citypulse.model.features import Windows
    from citypulse.model.freshness import Freshness

# Raise when a field's meaning changes or one is added without a default.
HANDOFF_VERSION = 1


class FreshState(Frozen):
    """The city's freshness as `check_freshness` judged it (model.freshness.Freshness)."""

    timezone: str
    reference: datetime
    last_success_at: datetime | None
    first_loaded_day: date | None
    last_loaded_day: date | None
    newest_event_local: datetime | None


class TrainedDays(Frozen):
    """The newest fold's days (model.features.Windows)."""

    feature_start: date
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    lag_days: int = 0  # the contract's publication lag the windows were planned with


class Trained(Frozen):
    """What `train` registered and decided (retrain.train_city)."""

    dag_run_id: str
    resolution: int
    as_of: date
    windows: TrainedDays
    label_threshold: float
    model_run_ids: dict[str, int]
    candidate: str
    published: str | None  # None in a backtest run (publish false)
    decision: str
    pr_auc: dict[str, float | None]
    known_at: datetime  # the instant the training data was read as of


class Forecast(Frozen):
    """What `predict` wrote (retrain.publish_forecast)."""

    model_run_id: int
    model_kind: str
    role: str
    days: tuple[date, ...]
    predictions: int
    flagged: int


class CityRetrain(Frozen):
    """One city's retrain, as far as it got."""

    version: int = HANDOFF_VERSION
    city: str
    freshness: FreshState
    trained: Trained | None = None
    forecast: Forecast | None = None

    @classmethod
    def of_freshness(cls, freshness: Freshness) -> CityRetrain:
        fields = {k: v for k, v in asdict(freshness).items() if k != "city"}
        return cls(city=freshness.city, freshness=FreshState(**fields))

    def fresh(self) -> Freshness:
        """The freshness to train on (imports the model's modules: call inside a task)."""
        from citypulse.model.freshness import Freshness

        return Freshness(city=self.city, **self.freshness.model_dump())

    def with_trained(self, result: dict[str, Any]) -> CityRetrain:
        """This hand-off with `train_city`'s result."""
        fields = {k: v for k, v in result.items() if k != "city"}
        return self.model_copy(update={"trained": Trained.model_validate(fields)})

    def require_trained(self) -> Trained:
        if self.trained is None:
            raise HandoffError(
                f"{self.city}: this hand-off was not trained; clear the city's `train` task"
            )
        return self.trained

    def windows(self) -> Windows:
        """The trained newest fold's days (imports the model's modules: call inside a task)."""
        from citypulse.model.features import Windows

        return Windows(**self.require_trained().windows.model_dump())

    def with_forecast(self, result: dict[str, Any]) -> CityRetrain:
        """This hand-off with `publish_forecast`'s result."""
        fields = {k: v for k, v in result.items() if k != "city"}
        return self.model_copy(update={"forecast": Forecast.model_validate(fields)})

    def to_xcom(self) -> dict[str, Any]:
        """Plain JSON for XCom (readable in the UI)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_xcom(cls, data: Any, *, task: str) -> CityRetrain:
        """The hand-off an upstream task returned, or HandoffError saying how to recover."""
        return read_versioned(
            cls,
            data,
            version=HANDOFF_VERSION,
            task=task,
            what="city retrain hand-off",
            error=HandoffError,
            recover="clear the city from `check_freshness` (Clear → downstream) to retrain it "
            "again",
            recover_malformed="clear the city from `check_freshness`",
        )
