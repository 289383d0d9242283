"""The validation report (`citypulse.pipeline.validate.reports`): one typed object whose JSON
is exactly the shape XCom, `validation_reports`, the load audit and the UI have always held."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from citypulse.pipeline.manifest import MANIFEST_VERSION, Extracted, Part, RunManifest, Validated
from citypulse.pipeline.validate.outcome import ExpectationOutcome, ValidationReport

# The JSON a run's report had before it had a type (ValidationReport.as_dict of the dataclass).
STORED: dict[str, Any] = {
    "extracted": 7,
    "rejected": 2,
    "rejected_share": 0.285714,
    "expectations": [
        {
            "expectation": "expect_column_to_exist",
            "column": "unique_key",
            "success": True,
            "unexpected": 0,
            "unexpected_percent": None,
        },
        {
            "expectation": "expect_column_values_to_be_unique",
            "column": "unique_key",
            "success": False,
            "unexpected": 2,
            "unexpected_percent": 28.571428571428573,
        },
    ],
    "top_reasons": [["unique_key: key repeated in this extract", 2]],
}


def test_the_report_round_trips_through_json_in_exactly_the_stored_shape() -> None:
    report = ValidationReport.from_json(STORED)
    assert report.expectations[1] == ExpectationOutcome(
        expectation="expect_column_values_to_be_unique",
        column="unique_key",
        success=False,
        unexpected=2,
        unexpected_percent=28.571428571428573,
    )
    assert report.top_reasons == (("unique_key: key repeated in this extract", 2),)
    text = json.dumps(report.to_json())
    assert text == json.dumps(STORED)  # the same keys, in the same order, the same values
    assert ValidationReport.from_json(json.loads(text)) == report


def test_the_share_is_derived_from_the_counts_and_rounded_only_in_json() -> None:
    report = ValidationReport(extracted=3, rejected=1)
    assert report.rejected_share == 1 / 3
    assert report.to_json() == {
        "extracted": 3,
        "rejected": 1,
        "rejected_share": 0.333333,
        "expectations": [],
        "top_reasons": [],
    }
    assert ValidationReport(extracted=0, rejected=0).rejected_share == 0.0


def test_a_report_is_frozen_and_knows_no_extra_fields() -> None:
    report = ValidationReport.from_json(STORED)
    with pytest.raises(ValidationError):
        report.rejected = 0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ValidationReport.from_json({**STORED, "passed": True})


def _manifest_json(report: Any) -> dict[str, Any]:
    """A validated run manifest as XCom held it, with `report` as its report."""
    manifest = RunManifest(
        dag_id="nyc_311",
        run_id="manual__1",
        prefix="runs/nyc_311/manual__1",
        window_start=datetime(2025, 10, 13),
        window_end=datetime(2025, 10, 14),
        timezone="America/New_York",
        started=1760400000.5,
        incremental=False,
        watermark_before=None,
        extracted=Extracted(
            parts=(Part(key="p", rows=7),),
            rows=7,
            window_rows=7,
            change_rows=0,
            pages=1,
            retries=0,
            portal_rows=7,
        ),
    ).to_xcom()
    manifest["validated"] = {
        "accepted": [{"key": "a", "rows": 5}],
        "rejects": [{"key": "r", "rows": 2}],
        "report": report,
        "key_range": [1, 9],
    }
    return manifest


def test_a_manifest_xcom_written_before_the_report_had_a_type_reads_and_writes_unchanged() -> None:
    """Why MANIFEST_VERSION did not change: XCom holds the same JSON as before."""
    held = _manifest_json(STORED)
    manifest = RunManifest.from_xcom(json.loads(json.dumps(held)), task="load")
    assert manifest.version == MANIFEST_VERSION
    assert manifest.require_validated().report == ValidationReport.from_json(STORED)
    assert json.dumps(manifest.to_xcom()) == json.dumps(held)


def test_rows_loaded_without_validation_carry_no_report() -> None:
    validated = Validated(accepted=(), rejects=(), report={}, key_range=None)
    assert validated.report is None
