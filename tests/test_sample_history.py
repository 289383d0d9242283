"""Generated history loaded straight into the warehouse looks like the DAG's own loads: the
generator's malformed records are quarantined with their kind and counted in the audit, so a
city's reject rate over its history is not a flat 0 % (after `make demo`'s history, every
city read 'drifting': its latest run's 1 % against a daily median of 0 %)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from conftest import query
from helpers import by_id

pytestmark = pytest.mark.integration

FIRST, LAST = date(2025, 3, 3), date(2025, 3, 5)  # 300 records a day


def test_malformed_records_are_quarantined_and_audited(
    fresh_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse_dev.generator import generate_day
    from citypulse_dev.sample_history import load_history

    contract = by_id(contracts, "nyc_311")
    key = contract.key_column.wire_name
    days = [generate_day(contract, date(2025, 3, d), seed=7, records=300) for d in (3, 4, 5)]
    malformed = {str(day.records[i][key]) for day in days for i in day.malformed}
    assert 0 < len(malformed) < 900
    well_formed = 900 - len(malformed)

    loaded = load_history([contract], FIRST, LAST, dsn=fresh_warehouse, records_per_day=300)

    assert loaded == {"nyc_311": well_formed}
    ((extracted, rows, rejected),) = query(
        fresh_warehouse,
        "SELECT extracted, loaded, rejected FROM citypulse.ingest_runs WHERE dag_id = 'nyc_311'",
    )
    assert (extracted, rows, rejected) == (900, well_formed, len(malformed))
    quarantined = query(
        fresh_warehouse,
        "SELECT record_key, reason FROM citypulse.rejects WHERE dag_id = 'nyc_311'",
    )
    assert {k for k, _ in quarantined} == malformed
    assert all(reason.endswith("(generated malformed record)") for _, reason in quarantined)
    (stored,) = query(fresh_warehouse, "SELECT count(*) FROM citypulse.nyc_311")
    assert stored[0] == well_formed
