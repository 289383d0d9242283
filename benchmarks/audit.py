"""Figure `audit`: what one partition audit costs per dataset, over a year of history.

Per city, a year of generated records is served by the SODA stand-in and the same records,
as the stand-in serves them (its row ids and `:updated_at` stamps), are loaded into the
warehouse (untimed). Timed with the function the `reconcile` task calls, `reconcile.audit`:
once in the steady state (every day agrees: one grouped portal query, one grouped warehouse
query, the comparison), and once after the portal removed one record on each of 3 old days
(those days read again, validated, loaded and reconciled). The stand-in answers the grouped
query in Python, so its share says little about a live portal's; the figure prints it apart.
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
    from citypulse.pipeline.run import load_typed_rows
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.storage import StorageRoot
    from citypulse.warehouse.connection import connect
    from citypulse_dev.sample_history import well_formed_records
    from citypulse_dev.standin.catalog import declare_contracts

    records = well_formed_records(
        contract, first, LAST_DAY, seed=11, records_per_day=records_per_day
    )
    standin.clear(contract.dataset_id)
    declare_contracts(standin, [contract])
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)
    served = standin.records(contract.dataset_id)
    batch = type_records(contract, served)
    window = window_for_dates(first.isoformat(), LAST_DAY.isoformat(), contract.timezone)
    with connect() as conn:
        load_typed_rows(
            conn,
            contract,
            batch.frame[~batch.rejected_mask],
            "bench_audit_history",
            window,
            StorageRoot(harness.workdir("audit-history").as_uri()),
        )
    return len(served)


def remove_from_old_days(standin: Any, contract: Any, first: date) -> None:
    """The portal removes one record on each of EDITED_DAYS old days."""
    event, key = contract.event_column.wire_name, contract.key_column.wire_name
    wanted = {(first + timedelta(days=7 * (i + 1))).isoformat() for i in range(EDITED_DAYS)}
    doomed: dict[str, str] = {}
    for record in standin.records(contract.dataset_id):
        day = str(record.get(event, ""))[:10]
        if day in wanted and day not in doomed:
            doomed[day] = str(record[key])
    standin.delete(contract.dataset_id, key, list(doomed.values()))


def city_figure(standin: Any, contract: Any, first: date, smoke: bool) -> dict[str, Any]:
    from citypulse.pipeline import reconcile
    from citypulse.storage import StorageRoot

    records = serve_and_load(standin, contract, first, SMOKE_RECORDS_PER_DAY if smoke else None)
    root = StorageRoot.configured()
    grouped = _timed_portal_query(standin, contract)
    began = time.perf_counter()
    steady = reconcile.audit(contract, "bench_audit_steady", root, "bench/audit/steady")
    steady_s = time.perf_counter() - began
    remove_from_old_days(standin, contract, first)
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
        "repaired_rows_deleted": repair.rows_deleted,
        "repair_s_per_day": round(repair_s / max(repair.days_repaired, 1), 3),
    }


def _timed_portal_query(standin: Any, contract: Any) -> float:
    """The grouped per-day query alone, answered by the stand-in (its Python grouping)."""
    from citypulse.portal.client import SocrataClient

    began = time.perf_counter()
    with SocrataClient(contract) as client:
        change = contract.change_column.wire_name if contract.change_column else None
        client.days(contract.event_column.wire_name, change)
    return round(time.perf_counter() - began, 3)


def run(smoke: bool) -> dict[str, Any]:
    from citypulse.contracts.contract import load_contracts
    from citypulse_dev.standin.server import SodaStandIn

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
