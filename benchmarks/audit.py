"""Figure `audit`: what one partition audit costs per dataset, over a year of history.

Per city, a year of generated records is served by the SODA stand-in and loaded into the
warehouse (untimed). Timed with the function the `reconcile` task calls,
`reconcile.audit`: once in the steady state (every day agrees: one grouped portal query,
one grouped warehouse query, the comparison), and once after the portal edited one record on
each of 3 old days (those days read again, validated, loaded and reconciled). The stand-in
answers the grouped query in Python, so its share says little about a live portal's; the
figure prints it apart.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from typing import Any

from benchmarks import harness

LAST_DAY = date(2025, 10, 12)
FULL_DAYS, SMOKE_DAYS = 365, 14
SMOKE_RECORDS_PER_DAY = 30
EDITED_DAYS = 3


def serve_and_load(standin: Any, contract: Any, first: date, records_per_day: int | None) -> int:
    """The same well-formed records in the stand-in and in the warehouse; how many."""
    from citypulse.model.sample_history import load_days, well_formed_records
    from citypulse.standin.catalog import declare_contracts
    from citypulse.warehouse import connect

    records = well_formed_records(
        contract, first, LAST_DAY, seed=11, records_per_day=records_per_day
    )
    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)
    with connect() as conn:
        load_days(conn, contract, first, LAST_DAY, seed=11, records_per_day=records_per_day)
    return len(records)


def edit_old_days(standin: Any, contract: Any, first: date) -> None:
    """The portal edits one record on each of EDITED_DAYS old days (a new category, and a
    newer change time where the change column is the dataset's own)."""
    event, key = contract.event_column.wire_name, contract.key_column.wire_name
    change = contract.change_column
    wanted = {(first + timedelta(days=7 * (i + 1))).isoformat() for i in range(EDITED_DAYS)}
    edits, seen = [], set()
    for record in standin.records(contract.dataset_id):
        day = str(record.get(event, ""))[:10]
        if day in wanted and day not in seen:
            seen.add(day)
            edited = {k: v for k, v in record.items() if not k.startswith(":")}
            edited[contract.incidents.category] = "EDITED FOR THE AUDIT FIGURE"
            if change is not None and not change.wire_name.startswith(":"):
                edited[change.wire_name] = "2030-01-01T00:00:00.000"
            edits.append(edited)
    standin.put(contract.dataset_id, edits, key=key)


def city_figure(standin: Any, contract: Any, first: date, smoke: bool) -> dict[str, Any]:
    from citypulse import reconcile
    from citypulse.storage import StorageRoot

    records = serve_and_load(standin, contract, first, SMOKE_RECORDS_PER_DAY if smoke else None)
    root = StorageRoot.configured()
    grouped = _timed_portal_query(standin, contract)
    began = time.perf_counter()
    steady = reconcile.audit(contract, "bench_audit_steady", root, "bench/audit/steady")
    steady_s = time.perf_counter() - began
    edit_old_days(standin, contract, first)
    began = time.perf_counter()
    repair = reconcile.audit(contract, "bench_audit_repair", root, "bench/audit/repair")
    repair_s = time.perf_counter() - began
    return {
        "records": records,
        "days_checked": steady.days_checked,
        "steady_s": round(steady_s, 3),
        "steady_differing": steady.days_differing,
        "portal_grouped_query_s": grouped,
        "repair_s": round(repair_s, 3),
        "repaired_days": repair.days_repaired,
        "repaired_rows_updated": repair.rows_updated,
        "repair_s_per_day": round(repair_s / max(repair.days_repaired, 1), 3),
    }


def _timed_portal_query(standin: Any, contract: Any) -> float:
    """The grouped per-day query alone, answered by the stand-in (its Python grouping)."""
    from citypulse.socrata import SocrataClient

    began = time.perf_counter()
    with SocrataClient(contract) as client:
        change = contract.change_column.wire_name if contract.change_column else None
        client.days(contract.event_column.wire_name, change)
    return round(time.perf_counter() - began, 3)


def run(smoke: bool) -> dict[str, Any]:
    from citypulse.contracts import load_contracts
    from citypulse.standin.server import SodaStandIn

    days = SMOKE_DAYS if smoke else FULL_DAYS
    first = LAST_DAY - timedelta(days=days - 1)
    contracts = sorted(load_contracts()[0], key=lambda c: c.dag_id)[: 1 if smoke else None]
    standin = SodaStandIn()
    os.environ["SOCRATA_BASE_URL"] = standin.start()
    try:
        with harness.fresh_database("audit"):
            cities = {c.dag_id: city_figure(standin, c, first, smoke) for c in contracts}
    finally:
        standin.stop()
    return {
        "days": days,
        "first_day": first.isoformat(),
        "last_day": LAST_DAY.isoformat(),
        "edited_days": EDITED_DAYS,
        "cities": cities,
        "peak_rss_mb": harness.peak_rss_mb(),
    }


if __name__ == "__main__":
    harness.figure_main("audit", run)
