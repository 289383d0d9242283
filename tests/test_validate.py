"""The validation report as people read it (the run's Validation tab, the failure message)."""

from __future__ import annotations

from datetime import date
from typing import Any

from helpers import by_id


def test_grouped_reasons_keep_the_allowed_values_and_read_as_words(contracts: list[Any]) -> None:
    from citypulse.pipeline.validate.suite import run_suite
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "nyc_311")
    column = next(c for c in contract.columns if c.values)
    records = generate_day(contract, date(2025, 3, 4)).records[:50]
    for record in records[:3]:
        record[column.wire_name] = "Someday"
    report = run_suite(contract, type_records(contract, records), None)
    reasons = dict(report.top_reasons)
    # Was "status:value outside [, , , , , , ]": grouping stripped the quoted allowed values.
    allowed = ", ".join(column.values or [])
    assert reasons.get(f"{column.name}: value not one of {allowed}") == 3, reasons
