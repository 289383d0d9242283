"""Versioned objects one task hands the next in XCom: the city run's manifest
(`citypulse.pipeline.manifest`) and the hotspot retrain's hand-off (`citypulse.model.handoff`).

A task reads what its upstream wrote only in the version it knows; anything else (a run in
flight across an upgrade, a hand-edited XCom) fails with a message that says how to recover.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class Frozen(BaseModel):
    """The base of what tasks hand on: immutable, and no field it does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def read_versioned(
    model: type[Model],
    data: Any,
    *,
    version: int,
    task: str,
    what: str,
    error: type[Exception],
    recover: str,
    recover_malformed: str,
) -> Model:
    """`data` as `model` if it carries `version`, else `error`: "`task` was handed a `what`
    of version N; ... `recover`" (or, malformed, naming the first problem and
    `recover_malformed`)."""
    if data is None:  # the upstream task returned nothing: it failed, or never ran
        raise error(
            f"`{task}` was handed no {what}: the task before it has not succeeded in this run "
            f"(it failed or did not run). Run it first, or {recover}"
        )
    found = data.get("version") if isinstance(data, dict) else None
    if found != version:
        written = f"version {found}" if found is not None else f"no {what.split()[-1]} version"
        raise error(
            f"`{task}` was handed a {what} of {written}; this CityPulse reads version "
            f"{version}. The run was started by another CityPulse version: {recover}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise error(
            f"`{task}` was handed a malformed {what} ({exc.error_count()} error(s): "
            f"{first['msg']} at {first['loc']}); {recover_malformed}"
        ) from None
