"""What a validation found: `ValidationReport`, its expectations' outcomes, and its JSON.

`ValidationReport` is what `suite` finds, what `Validated.report` carries in the run manifest
(XCom), what `ValidationFailed` carries when a batch must not load, and what
`validation_reports` and the load audit store (`reports`). Its JSON (`to_json`) is the one
shape all of them hold and the UI's Validation tab reads:

    {"extracted": 120, "rejected": 3, "rejected_share": 0.025,
     "expectations": [{"expectation": ..., "column": ..., "success": ..., "unexpected": ...,
                       "unexpected_percent": ...}, ...],
     "top_reasons": [["reason", count], ...]}

Imports nothing heavy: the manifest and the exceptions name this type.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from citypulse.versioned import Frozen


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
