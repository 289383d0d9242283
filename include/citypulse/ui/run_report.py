"""A city run's validation report, its audit row and a sample of its rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citypulse.contracts.contract import Contract
from citypulse.ui.airflow_runs import RunInfo, run_info
from citypulse.ui.db import exists, fetch, reading

REJECT_SAMPLE = 5


@dataclass(frozen=True)
class RejectSample:
    key: str | None
    reason: str
    record: dict[str, Any]


@dataclass(frozen=True)
class RunReport:
    dag_id: str
    run_id: str
    city: bool  # a CityPulse city DAG (the tab shows on every DAG's runs)
    run: RunInfo | None
    validation: dict[str, Any] | None  # passed, message, created_at, report
    audit: dict[str, Any] | None
    reject_samples: list[RejectSample] = field(default_factory=list)


_AUDIT_FIELDS = (
    "window_start",
    "window_end",
    "timezone",
    "portal_rows",
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "seconds",
    "finished_at",
)


def run_report(contracts: list[Contract], dag_id: str, run_id: str) -> RunReport:
    """What validation found in one run, the run's audit row and a sample of its rejects."""
    if dag_id not in {c.dag_id for c in contracts}:
        return RunReport(dag_id, run_id, False, run_info(dag_id, run_id), None, None)
    params = {"dag_id": dag_id, "run_id": run_id, "limit": REJECT_SAMPLE}
    validation = audit = None
    samples: list[RejectSample] = []
    with reading() as cur:
        if exists(cur, "validation_reports"):
            found = fetch(cur, "ui/run_validation.sql", params)
            if found:
                passed, message, report, created_at = found[0]
                validation = {
                    "passed": passed,
                    "message": message,
                    "created_at": created_at,
                    "report": report,
                }
        if exists(cur, "ingest_runs"):
            found = fetch(cur, "ui/run_audit.sql", params)
            audit = dict(zip(_AUDIT_FIELDS, found[0], strict=True)) if found else None
            samples = [RejectSample(*row) for row in fetch(cur, "ui/run_rejects.sql", params)]
    return RunReport(dag_id, run_id, True, run_info(dag_id, run_id), validation, audit, samples)
