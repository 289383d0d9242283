"""Each validation of a city run kept in the warehouse (`validation_reports`), passed or
failed, with the stage that validated (`validate`, or `reconcile` for an audit's repair).

XCom holds only a passed run's report, and only until the run is cleared; the UI's
Validation tab and an operator asking "why did nothing load?" read `validation_reports`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citypulse.pipeline.manifest import RunManifest
    from citypulse.pipeline.validate.outcome import ValidationReport

log = logging.getLogger(__name__)


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
