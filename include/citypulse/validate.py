"""Validation: a Great Expectations 1.x suite built from the contract, run on typed records.

Row-level failures become reject reasons (the raw record is quarantined with them); the batch
fails only when the rejected share passes the contract's threshold or a required column is
missing altogether. Imported only inside tasks: great_expectations costs seconds to import.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from citypulse.contracts import Contract
from citypulse.exceptions import ValidationFailed
from citypulse.manifest import Part, RunManifest, Validated
from citypulse.staging import ACCEPTED_FILE, REJECTS_FILE, key_range, write_accepted, write_rejects
from citypulse.storage import StorageRoot
from citypulse.typing_rules import TypedBatch, type_extract
from citypulse.windows import Window

log = logging.getLogger(__name__)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass
class ExpectationOutcome:
    """One expectation's verdict as it goes into the run's validation report."""

    expectation: str
    column: str | None
    success: bool
    unexpected: int
    unexpected_percent: float | None


@dataclass
class ValidationReport:
    extracted: int
    rejected: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.extracted if self.extracted else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "extracted": self.extracted,
            "rejected": self.rejected,
            "rejected_share": round(self.rejected_share, 6),
            "expectations": [o.__dict__ for o in self.outcomes],
            "top_reasons": self.top_reasons,
        }


def build_suite(contract: Contract, window: Window | None) -> Any:
    """The contract's expectations as a GX ExpectationSuite, with the reject reason of each."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"citypulse_{contract.dag_id}")

    def add(expectation: Any, reason: str) -> None:
        expectation.meta = {"reason": reason}
        suite.add_expectation(expectation)

    for column in contract.columns:
        add(e.ExpectColumnToExist(column=column.name), f"{column.name}: column missing")
        if column.required:
            add(
                e.ExpectColumnValuesToNotBeNull(column=column.name),
                f"{column.name}: required value missing",
            )
        if column.values:
            add(
                e.ExpectColumnValuesToBeInSet(column=column.name, value_set=column.values),
                f"{column.name}: value outside {column.values}",
            )
    add(
        e.ExpectColumnValuesToBeUnique(column=contract.key),
        f"{contract.key}: key repeated in this extract",
    )
    if window is not None:
        add(
            # Rows of the incremental changes query lie outside the window by design.
            e.ExpectColumnValuesToBeBetween(
                column=contract.event_time,
                min_value=window.start,
                max_value=window.end,
                strict_max=True,
                row_condition='cp_origin=="window"',
                condition_parser="pandas",
            ),
            f"{contract.event_time}: outside the window {window.start} .. {window.end}",
        )
    box = contract.bbox
    for name, low, high in (
        (contract.latitude, box.min_lat, box.max_lat),
        (contract.longitude, box.min_lon, box.max_lon),
    ):
        add(
            e.ExpectColumnValuesToBeBetween(
                column=name, min_value=low, max_value=high, mostly=box.mostly
            ),
            f"{name}: outside the city bounding box [{low}, {high}]",
        )
    return suite


def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(contract: Contract, batch: TypedBatch, window: Window | None) -> ValidationReport:
    """Validate a typed batch; add each failing row's reason to the batch."""
    frame = batch.frame
    if len(frame):
        context = _context()
        asset = context.data_sources.add_pandas("citypulse").add_dataframe_asset(contract.dag_id)
        definition = asset.add_batch_definition_whole_dataframe("extract")
        gx_batch = definition.get_batch(batch_parameters={"dataframe": frame})
        result = gx_batch.validate(
            build_suite(contract, window), result_format={"result_format": "COMPLETE"}
        )
        outcomes = _apply_results(result, batch)
    else:
        outcomes = []
    rejected = int(batch.rejected_mask.sum())
    reasons = Counter(
        reason.split(":")[0] + ":" + _reason_kind(reason)
        for rows in batch.reasons
        for reason in rows
    )
    return ValidationReport(len(frame), rejected, outcomes, reasons.most_common(10))


def _reason_kind(reason: str) -> str:
    # Reasons differ by the quoted value ("x: 'N/A' is not ..."); group them by wording.
    text = reason.split(":", 1)[1] if ":" in reason else reason
    return " ".join(_QUOTED.sub("", text).split())[:80]


def _apply_results(result: Any, batch: TypedBatch) -> list[ExpectationOutcome]:
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        column = config.kwargs.get("column")
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise ValidationFailed(
                f"expectation {config.type} on {column!r} could not run: "
                f"{item.exception_info.get('exception_message')}"
            )
        unexpected = item.result.get("unexpected_index_list") or []
        if unexpected:
            mask = np.zeros(len(batch.frame), dtype=bool)
            mask[np.asarray(unexpected, dtype=int)] = True
            batch.reject(mask, config.meta["reason"])
        outcomes.append(
            ExpectationOutcome(
                config.type,
                column,
                bool(item.success),
                len(unexpected),
                item.result.get("unexpected_percent"),
            )
        )
    return outcomes


def enforce(contract: Contract, batch: TypedBatch, report: ValidationReport) -> None:
    """Fail the batch, with a message an operator can act on, when it must not load."""
    if batch.absent_required:
        raise ValidationFailed(
            f"{contract.dag_id}: required column(s) {batch.absent_required} are missing from "
            f"every record the portal sent (schema drift at {contract.portal}/"
            f"{contract.dataset_id}?); nothing was loaded",
            report=report.as_dict(),
        )
    if report.rejected_share > contract.reject_threshold:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in report.top_reasons[:5])
        raise ValidationFailed(
            f"{contract.dag_id}: {report.rejected:,} of {report.extracted:,} records "
            f"({report.rejected_share:.1%}) failed validation, above the contract's "
            f"{contract.reject_threshold:.0%} threshold; nothing was loaded. "
            f"Top reasons: {reasons}",
            report=report.as_dict(),
        )
    if batch.unknown_fields:
        log.warning(
            "%s: ignoring %d field(s) the contract does not know: %s",
            contract.dag_id,
            len(batch.unknown_fields),
            sorted(batch.unknown_fields),
        )


def validate_run(contract: Contract, manifest: RunManifest, root: StorageRoot) -> Validated:
    """Type a run's extract parts, validate them, and write the accepted rows (COPY-ready)
    and the rejects (raw record + reasons) under the run's prefix. ValidationFailed when the
    batch must not load."""
    extracted = manifest.extracted
    batch = type_extract(
        contract, [root.object(part.key) for part in extracted.parts], extracted.window_rows
    )
    if len(batch.frame) != extracted.rows:
        raise RuntimeError(
            f"{manifest.prefix}: the extract parts hold {len(batch.frame)} records, extract "
            f"reported {extracted.rows}: clear the run from `extract`"
        )
    report = run_suite(contract, batch, manifest.window)
    enforce(contract, batch, report)
    rejected = batch.rejected_mask
    accepted_rows = batch.frame[~rejected]
    accepted_key, rejects_key = manifest.key(ACCEPTED_FILE), manifest.key(REJECTS_FILE)
    accepted = write_accepted(
        accepted_rows, contract, root.object(accepted_key), run_id=manifest.run_id
    )
    key_field = contract.key_column.wire_name
    positions = np.flatnonzero(rejected).tolist()
    rejects = write_rejects(
        (
            {"record": record, "reason": "; ".join(batch.reasons[i]), "key": record.get(key_field)}
            for i, record in zip(positions, batch.raw_records(positions), strict=True)
        ),
        root.object(rejects_key),
    )
    log.info(
        "%s: %d extracted, %d accepted, %d rejected (%.2f%%)",
        contract.dag_id,
        report.extracted,
        accepted,
        report.rejected,
        100 * report.rejected_share,
    )
    bounds = key_range(accepted_rows, contract)
    return Validated(
        accepted=(Part(key=accepted_key, rows=accepted),),
        rejects=(Part(key=rejects_key, rows=rejects),),
        report=report.as_dict(),
        key_range=None if bounds is None else (bounds[0], bounds[1]),
    )
