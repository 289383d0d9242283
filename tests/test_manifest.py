"""The run manifest (`citypulse.pipeline.manifest`): JSON in XCom and back unchanged, frozen, and a
manifest of another version refused with a message that says how to recover."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from citypulse.exceptions import ManifestError
from citypulse.pipeline.manifest import MANIFEST_VERSION, Extracted, Part, RunManifest, Validated


def manifest(**changes: Any) -> RunManifest:
    base = RunManifest(
        dag_id="nyc_311",
        run_id="scheduled__2025-10-14T04:00:00+00:00",
        prefix="runs/nyc_311/scheduled__2025-10-14T04_00_00_00_00",
        window_start=datetime(2025, 10, 13),
        window_end=datetime(2025, 10, 14),
        timezone="America/New_York",
        started=1760400000.5,
        incremental=True,
        watermark_before="2025-10-13T05:00:00.000Z",
        extracted=Extracted(
            parts=(Part(key="runs/x/extract/part-00000.ndjson", rows=3),),
            rows=3,
            window_rows=2,
            change_rows=1,
            pages=2,
            retries=0,
            portal_rows=3,
            watermark="2025-10-14T05:00:00.000Z",
        ),
    )
    return base.model_copy(update=changes)


def test_a_manifest_survives_xcom_json_unchanged() -> None:
    import json

    validated = manifest().with_validated(
        Validated(
            accepted=(Part(key="runs/x/accepted.csv", rows=2),),
            rejects=(Part(key="runs/x/rejects.ndjson", rows=1),),
            report={
                "extracted": 3,
                "rejected": 1,
                "rejected_share": 0.333333,
                "expectations": [],
                "top_reasons": [["a:b", 1]],
            },
            key_range=(10, 99),
        )
    )
    data = json.loads(json.dumps(validated.to_xcom()))
    again = RunManifest.from_xcom(data, task="load")
    assert again == validated
    assert again.version == MANIFEST_VERSION
    assert again.window.start == datetime(2025, 10, 13) and again.window.hours == 24
    assert again.require_validated().accepted_rows == 2
    assert again.require_validated().rejected_rows == 1
    assert again.key("accepted.csv") == f"{again.prefix}/accepted.csv"


def test_a_manifest_is_frozen_and_knows_no_extra_fields() -> None:
    with pytest.raises(ValidationError):
        manifest().dag_id = "other"  # type: ignore[misc]
    with pytest.raises(ManifestError, match="malformed"):
        RunManifest.from_xcom({**manifest().to_xcom(), "run_dir": "/tmp/x"}, task="load")


@pytest.mark.parametrize(
    ("handed", "named"),
    [
        ({"run_id": "x", "run_dir": "/srv/runs/x", "accepted_format": 2}, "no manifest version"),
        ({"version": MANIFEST_VERSION + 1}, f"version {MANIFEST_VERSION + 1}"),
    ],
)
def test_a_manifest_of_another_version_is_refused_saying_how_to_recover(
    handed: Any, named: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        RunManifest.from_xcom(handed, task="validate")
    message = str(caught.value)
    assert named in message and f"reads version {MANIFEST_VERSION}" in message
    assert "clear it from `extract`" in message
    assert not caught.value.transient


def test_no_manifest_at_all_says_the_task_before_has_not_succeeded() -> None:
    # What a task is handed when its upstream failed (`airflow tasks test` runs it anyway):
    # not "another CityPulse version", which would send the operator the wrong way.
    with pytest.raises(ManifestError) as caught:
        RunManifest.from_xcom(None, task="load")
    message = str(caught.value)
    assert "`load` was handed no run manifest: the task before it has not succeeded" in message
    assert "another CityPulse version" not in message and "clear it from `extract`" in message
    assert not caught.value.transient


def test_a_manifest_not_yet_validated_cannot_be_loaded() -> None:
    with pytest.raises(ManifestError, match="not validated"):
        manifest().require_validated()
