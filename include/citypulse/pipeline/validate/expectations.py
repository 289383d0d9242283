"""The contract's expectations, as data: the one list both engines of `suite` check.

`contract_expectations` spells each expectation once (its Great Expectations type, column,
arguments and the reason a failing row is rejected for); `suite.build_suite` turns the list
into a GX `ExpectationSuite`, and `vectorized` checks the same list on the typed frame in
pandas/NumPy. Either engine gives a `Verdict` per expectation, in the suite's order.
Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from citypulse.contracts.contract import Contract
from citypulse.pipeline.windows import Window

if TYPE_CHECKING:
    import numpy as np

# Only rows of the window query are checked against the window: rows of the incremental
# changes query lie outside it by design.
WINDOW_ROWS = 'cp_origin=="window"'


@dataclass(frozen=True)
class Expectation:
    """One expectation of the suite: a Great Expectations type and its arguments."""

    type: str  # e.g. expect_column_values_to_be_in_set
    column: str
    reason: str  # what a row it flags is rejected for
    kwargs: dict[str, Any] = field(default_factory=dict)  # besides `column`

    @property
    def mostly(self) -> float:
        mostly = self.kwargs.get("mostly")
        return 1.0 if mostly is None else float(mostly)


@dataclass
class Verdict:
    """What an engine found for one expectation on one chunk: its success, the rows it
    counted (None: an expectation about the table, not its rows), how many of them were
    NULL (the GX `missing_count`) and the rows it flags (a mask over the chunk)."""

    expectation: Expectation
    success: bool
    rows: int | None
    missing: int
    unexpected: np.ndarray  # bool, one per row of the chunk


def contract_expectations(contract: Contract, window: Window | None) -> list[Expectation]:
    """The contract's expectations, in the order the suite checks them."""
    out: list[Expectation] = []
    for column in contract.columns:
        out.append(
            Expectation("expect_column_to_exist", column.name, f"{column.name}: column missing")
        )
        if column.required:
            out.append(
                Expectation(
                    "expect_column_values_to_not_be_null",
                    column.name,
                    f"{column.name}: required value missing",
                )
            )
        if column.values:
            out.append(
                Expectation(
                    "expect_column_values_to_be_in_set",
                    column.name,
                    f"{column.name}: value not one of {', '.join(column.values)}",
                    {"value_set": column.values},
                )
            )
    out.append(
        Expectation(
            "expect_column_values_to_be_unique",
            contract.key,
            f"{contract.key}: key repeated in this extract",
        )
    )
    if window is not None:
        out.append(
            Expectation(
                "expect_column_values_to_be_between",
                contract.event_time,
                f"{contract.event_time}: outside the window {window.start} .. {window.end}",
                {
                    "min_value": window.start,
                    "max_value": window.end,
                    "strict_max": True,
                    "row_condition": WINDOW_ROWS,
                    "condition_parser": "pandas",
                },
            )
        )
    box = contract.bbox
    if box is None or contract.latitude is None or contract.longitude is None:
        return out  # a dataset without a place: nothing to keep inside a box
    for name, low, high in (
        (contract.latitude, box.min_lat, box.max_lat),
        (contract.longitude, box.min_lon, box.max_lon),
    ):
        out.append(
            Expectation(
                "expect_column_values_to_be_between",
                name,
                f"{name}: outside the city bounding box [{low}, {high}]",
                {"min_value": low, "max_value": high, "mostly": box.mostly},
            )
        )
    return out


def in_checking_order(expectations: list[Expectation]) -> list[Expectation]:
    """The expectations in the order Great Expectations checks (and reports) them: grouped
    by column, the columns in the order they first appear (its
    `Validator.process_expectations_for_validation`). Rows are rejected in this order, so a
    row's reasons read the same whichever engine checked it."""
    by_column: dict[str, list[Expectation]] = {}
    for expectation in expectations:
        by_column.setdefault(expectation.column, []).append(expectation)
    return [e for group in by_column.values() for e in group]
