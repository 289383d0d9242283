"""The validation report of a city run: its type, its JSON, and each one kept in the warehouse.

`ValidationReport` is what `suite` finds, what `Validated.report` carries in the run manifest
(XCom), what `ValidationFailed` carries when a batch must not load, and what
`validation_reports` and the load audit store. Its JSON (`to_json`) is the one shape all of
them hold and the UI's Validation tab reads:

    {"extracted": 120, "rejected": 3, "rejected_share": 0.025,
     "expectations": [{"expectation": ..., "column": ..., "success": ..., "unexpected": ...,
                       "unexpected_percent": ...}, ...],
     "top_reasons": [["reason", count], ...]}

XCom holds only a passed run's report, and only until the run is cleared; the UI's
Validation tab and an operator asking "why did nothing load?" read `validation_reports`.
Imports nothing heavy: the manifest (read when Airflow parses the DAGs) names this type.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import (
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from citypulse.versioned import Frozen

if TYPE_CHECKING:
    from citypulse.pipeline.manifest import RunManifest

log = logging.getLogger(__name__)


class ExpectationOutcome(Frozen):
    """One expectation's verdict over every row of the run."""

    expectation: str  # the Great Expectations type, e.g. expect_column_values_to_be_unique
    column: str | None
    success: bool
    unexpected: int  # rows it rejected
    unexpected_percent: float | None  # of the rows it considered (None: it counts no rows)


class ValidationReport(Frozen):
    """What validation found in one run: counts, each expectation's verdict, the reasons
    rows were rejected for most often (grouped by wording, most frequent first)."""

    extracted: int
    rejected: int
    expectations: tuple[ExpectationOutcome, ...] = ()
    top_reasons: tuple[tuple[str, int], ...] = ()

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.extracted if self.extracted else 0.0

    @model_validator(mode="before")
    @classmethod
    def _derived_share(cls, data: Any) -> Any:
        # The JSON carries the share for its readers; the object derives it from the counts.
        if isinstance(data, dict) and "rejected_share" in data:
            return {k: v for k, v in data.items() if k != "rejected_share"}
        return data

    @model_serializer(mode="wrap")
    def _json_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        fields = handler(self)
        return {
            "extracted": fields["extracted"],
            "rejected": fields["rejected"],
            "rejected_share": round(self.rejected_share, 6),
            "expectations": fields["expectations"],
            "top_reasons": fields["top_reasons"],
        }

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (XCom, `validation_reports.report`, the audit's `validation`)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Any) -> ValidationReport:
        """The report `to_json` wrote; pydantic's ValidationError if `data` is not one."""
        return cls.model_validate(data)


def record_validation(
    manifest: RunManifest,
    *,
    passed: bool,
    report: ValidationReport | None,
    message: str | None,
    stage: str = "validate",
) -> None:
    """Store one validation's report, and which stage validated (`validate`, or `reconcile`
    for an audit's repair). Never raises: the validation's own outcome (and error) is what the
    task must report, and the load records the run's audit regardless."""
    from psycopg2.extras import Json

    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.sqlfiles import render
    from citypulse.warehouse.tables import ensure_schema

    try:
        with connect() as conn, conn.cursor() as cur:
            ensure_schema(cur)
            cur.execute(
                render("load/validation_report.sql"),
                {
                    "dag_id": manifest.dag_id,
                    "run_id": manifest.run_id,
                    "passed": passed,
                    "message": message,
                    "report": Json({} if report is None else report.to_json()),
                    "stage": stage,
                },
            )
    except Exception as exc:  # the report is for people; the run's outcome must not depend on it
        log.warning("could not store the validation report of %s: %s", manifest.run_id, exc)
