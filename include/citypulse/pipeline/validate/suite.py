"""Validation: the contract's expectations (a Great Expectations 1.x suite) run on typed records.

Row-level failures become reject reasons (the raw record is quarantined with them); the batch
fails only when the rejected share passes the contract's threshold or a required column is
missing altogether. The expectations are checked by the `vectorized` engine (GX's verdicts in
pandas/NumPy) or by GX itself (`CITYPULSE_VALIDATE_ENGINE=gx`, and whatever `vectorized`
declines); both give the same report and rejects. Imported only inside tasks (pandas; GX
only when it runs: it costs seconds and 130 MiB to import).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from citypulse.contracts.contract import Contract
from citypulse.exceptions import ValidationFailed
from citypulse.pipeline.manifest import Part, RunManifest, Validated
from citypulse.pipeline.run_files import (
    ACCEPTED_PREFIX,
    REJECTS_PREFIX,
    key_range,
    part_key,
    write_accepted,
    write_rejects,
)
from citypulse.pipeline.validate import vectorized
from citypulse.pipeline.validate.chunks import (
    Chunk,
    ChunkReader,
    KeyLedger,
    PartSizeMismatch,
    plan_chunks,
)
from citypulse.pipeline.validate.expectations import (
    Expectation,
    Verdict,
    contract_expectations,
    in_checking_order,
)
from citypulse.pipeline.validate.outcome import ExpectationOutcome, ValidationReport
from citypulse.pipeline.validate.typing_rules import TypedBatch
from citypulse.pipeline.windows import Window
from citypulse.storage import StorageRoot

log = logging.getLogger(__name__)
# How the suite is checked: `vectorized` (pandas/NumPy, GX's verdicts; GX for what it
# declines) or `gx` (every chunk through Great Expectations).
ENGINES = ("vectorized", "gx")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass
class ExpectationCounts:
    """One expectation's counts over the rows checked so far: what a verdict is made of, so
    that chunks add up to the verdict one run over all their rows would give."""

    expectation: str
    column: str | None
    mostly: float
    counted: bool  # a row-level expectation (the others have a success only)
    success: bool = True
    rows: int = 0
    considered: int = 0  # rows not NULL (and matching its row condition)
    unexpected: int = 0

    def add(self, other: ExpectationCounts) -> None:
        self.success = self.success and other.success
        self.rows += other.rows
        self.considered += other.considered
        self.unexpected += other.unexpected

    def outcome(self) -> ExpectationOutcome:
        """The verdict as Great Expectations words it (its `_format_map_output`)."""
        if not self.counted:
            return ExpectationOutcome(
                expectation=self.expectation,
                column=self.column,
                success=self.success,
                unexpected=0,
                unexpected_percent=None,
            )
        known = self.rows > 0 and self.considered > 0
        percent = self.unexpected / self.considered * 100 if known else None
        success = (
            True
            if not known
            else (float(self.considered) - float(self.unexpected)) / float(self.considered)
            >= self.mostly
        )
        return ExpectationOutcome(
            expectation=self.expectation,
            column=self.column,
            success=success,
            unexpected=self.unexpected,
            unexpected_percent=percent,
        )


@dataclass
class ChunkReport:
    """What the suite found in one chunk of a run (reports of chunks merge into the run's)."""

    rows: int
    rejected: int
    counts: list[ExpectationCounts]
    reasons: Counter[str]


def merged_report(chunks: Sequence[ChunkReport]) -> ValidationReport:
    """The report of a run from its chunks' (in order): what one chunk of all the rows
    would give."""
    counts: list[ExpectationCounts] = []
    reasons: Counter[str] = Counter()
    for chunk in chunks:
        if not counts:
            counts = [replace(c) for c in chunk.counts]
        elif chunk.counts:
            for total, one in zip(counts, chunk.counts, strict=True):
                total.add(one)
        reasons.update(chunk.reasons)
    return ValidationReport(
        extracted=sum(c.rows for c in chunks),
        rejected=sum(c.rejected for c in chunks),
        expectations=tuple(c.outcome() for c in counts),
        top_reasons=tuple(reasons.most_common(10)),
    )


def build_suite(contract: Contract, window: Window | None) -> Any:
    """The contract's expectations as a GX ExpectationSuite, with the reason of each."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=f"citypulse_{contract.dag_id}")
    for spec in contract_expectations(contract, window):
        cls = getattr(gx.expectations, _camel(spec.type))
        expectation = cls(column=spec.column, **spec.kwargs)
        expectation.meta = {"reason": spec.reason}
        suite.add_expectation(expectation)
    return suite


def _camel(type_name: str) -> str:
    # expect_column_to_exist -> ExpectColumnToExist, GX's class for the type
    return "".join(word.capitalize() for word in type_name.split("_"))


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


class SuiteRunner:
    """The contract's suite, run chunk after chunk: by the `vectorized` engine, or on one
    Great Expectations context (`engine="gx"`, and whatever `vectorized` declines)."""

    def __init__(
        self, contract: Contract, window: Window | None, engine: str | None = None
    ) -> None:
        from citypulse import settings

        self.contract, self.window = contract, window
        self.engine = engine or settings.VALIDATE_ENGINE
        if self.engine not in ENGINES:
            raise ValueError(f"validate engine {self.engine!r}: one of {', '.join(ENGINES)}")
        self.expectations = in_checking_order(contract_expectations(contract, window))
        self._definition: Any = None
        self._suite: Any = None

    def check(self, batch: TypedBatch, repeated: frozenset[Any] = frozenset()) -> ChunkReport:
        """Validate a typed chunk; add each failing row's reason to the batch. `repeated`:
        keys found in other chunks too, rejected as a key repeated in this extract."""
        counts = self._validate(batch, repeated) if len(batch.frame) else []
        reasons = Counter(
            reason.split(":")[0] + ": " + _reason_kind(reason)
            for rows in batch.reasons
            for reason in rows
        )
        return ChunkReport(len(batch.frame), int(batch.rejected_mask.sum()), counts, reasons)

    def _validate(self, batch: TypedBatch, repeated: frozenset[Any]) -> list[ExpectationCounts]:
        verdicts = None
        if self.engine == "vectorized":
            verdicts = vectorized.evaluate(self.expectations, batch.frame)
        if verdicts is None:
            verdicts = self._gx_verdicts(batch.frame)
        return _apply_verdicts(verdicts, batch, self.contract.key, repeated)

    def _gx_verdicts(self, frame: pd.DataFrame) -> list[Verdict]:
        if self._definition is None:
            context = _context()
            asset = context.data_sources.add_pandas("citypulse").add_dataframe_asset(
                self.contract.dag_id
            )
            self._definition = asset.add_batch_definition_whole_dataframe("extract")
            self._suite = build_suite(self.contract, self.window)
        gx_batch = self._definition.get_batch(batch_parameters={"dataframe": frame})
        result = gx_batch.validate(self._suite, result_format={"result_format": "COMPLETE"})
        return _gx_results(result, self.expectations, len(frame))


def run_suite(contract: Contract, batch: TypedBatch, window: Window | None) -> ValidationReport:
    """Validate a typed batch; add each failing row's reason to the batch."""
    return merged_report([SuiteRunner(contract, window).check(batch)])


def _reason_kind(reason: str) -> str:
    # Reasons differ by the quoted value ("x: 'N/A' is not ..."); group them by wording.
    text = reason.split(":", 1)[1] if ":" in reason else reason
    # Long enough for an allowed-value list; a report groups reasons, it does not quote values.
    return " ".join(_QUOTED.sub("", text).split())[:200]


def _gx_results(result: Any, expectations: Sequence[Expectation], rows: int) -> list[Verdict]:
    """GX's validation result as a verdict per expectation of the suite."""
    by_reason = {e.reason: e for e in expectations}
    verdicts = []
    for item in result.results:
        config = item.expectation_config
        column = config.kwargs.get("column")
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise ValidationFailed(
                f"expectation {config.type} on {column!r} could not run: "
                f"{item.exception_info.get('exception_message')}"
            )
        mask = np.zeros(rows, dtype=bool)
        mask[np.asarray(item.result.get("unexpected_index_list") or [], dtype=int)] = True
        verdicts.append(
            Verdict(
                by_reason[config.meta["reason"]],
                bool(item.success),
                item.result.get("element_count"),
                item.result.get("missing_count") or 0,
                mask,
            )
        )
    return verdicts


def _apply_verdicts(
    verdicts: Sequence[Verdict], batch: TypedBatch, key: str, repeated: frozenset[Any]
) -> list[ExpectationCounts]:
    """Reject the rows each verdict flags (for its reason, in the suite's order); the
    counts of each expectation. Keys in `repeated` fail the key's uniqueness too."""
    counts = []
    for verdict in verdicts:
        spec = verdict.expectation
        mask = verdict.unexpected
        if repeated and spec.type == "expect_column_values_to_be_unique" and spec.column == key:
            keys = batch.frame[key]
            mask = mask | (keys.notna() & keys.isin(repeated)).to_numpy(dtype=bool)
        if mask.any():
            batch.reject(mask, spec.reason)
        rows = verdict.rows
        counts.append(
            ExpectationCounts(
                spec.type,
                spec.column,
                spec.mostly,
                counted=rows is not None,
                success=verdict.success,
                rows=rows or 0,
                considered=(rows or 0) - verdict.missing,
                unexpected=int(mask.sum()),
            )
        )
    return counts


def enforce(contract: Contract, batch: TypedBatch, report: ValidationReport) -> None:
    """Fail the batch, with a message an operator can act on, when it must not load."""
    if batch.absent_required:
        raise ValidationFailed(
            f"{contract.dag_id}: required column(s) {batch.absent_required} are missing from "
            f"every record the portal sent (schema drift at {contract.portal}/"
            f"{contract.dataset_id}?); nothing was loaded",
            report=report,
        )
    if report.rejected_share > contract.reject_threshold:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in report.top_reasons[:5])
        raise ValidationFailed(
            f"{contract.dag_id}: {report.rejected:,} of {report.extracted:,} records "
            f"({report.rejected_share:.1%}) failed validation, above the contract's "
            f"{contract.reject_threshold:.0%} threshold; nothing was loaded. "
            f"Top reasons: {reasons}",
            report=report,
        )
    if batch.unknown_fields:
        log.warning(
            "%s: ignoring %d field(s) the contract does not know: %s",
            contract.dag_id,
            len(batch.unknown_fields),
            sorted(batch.unknown_fields),
        )


def validate_run(
    contract: Contract, manifest: RunManifest, root: StorageRoot, chunk_rows: int | None = None
) -> Validated:
    """Type a run's extract parts, validate them, and write the accepted rows (COPY-ready)
    and the rejects (raw record + reasons) under the run's prefix, one part of each per chunk
    of at most `chunk_rows` records (default: the `CHUNK_ROWS` setting). ValidationFailed
    when the batch must not load; then nothing is left written."""
    from citypulse import settings

    extracted = manifest.extracted
    chunks = plan_chunks(
        [(root.object(part.key), part.rows) for part in extracted.parts],
        extracted.window_rows,
        chunk_rows or settings.CHUNK_ROWS,
    )
    prefixes = [manifest.key(ACCEPTED_PREFIX), manifest.key(REJECTS_PREFIX)]
    for prefix in prefixes:
        root.remove(prefix)  # a rerun with other chunks leaves none of the last run's
    try:
        written = _validate_chunks(contract, manifest, root, chunks)
    except BaseException:
        for prefix in prefixes:
            root.remove(prefix)
        raise
    report = merged_report([w.report for w in written])
    log.info(
        "%s: %d extracted in %d chunk(s), %d accepted, %d rejected (%.2f%%)",
        contract.dag_id,
        report.extracted,
        len(written),
        report.extracted - report.rejected,
        report.rejected,
        100 * report.rejected_share,
    )
    bounds = [w.key_range for w in written if w.key_range is not None]
    return Validated(
        accepted=tuple(w.accepted for w in written),
        rejects=tuple(w.rejects for w in written),
        report=report,
        key_range=(min(b[0] for b in bounds), max(b[1] for b in bounds)) if bounds else None,
    )


@dataclass
class _Written:
    """One chunk's outcome: its report and the objects written for it."""

    report: ChunkReport
    accepted: Part
    rejects: Part
    key_range: tuple[Any, Any] | None
    absent_required: list[str]
    unknown_fields: set[str]


def _validate_chunks(
    contract: Contract, manifest: RunManifest, root: StorageRoot, chunks: Sequence[Chunk]
) -> list[_Written]:
    """Each chunk typed, checked and written in turn; the chunks holding a key that another
    chunk holds too are checked again knowing it. Enforced over the whole run at the end."""
    reader, ledger = ChunkReader(contract), KeyLedger()
    runner = SuiteRunner(contract, manifest.window)
    written: list[_Written] = []
    try:
        for chunk in chunks:
            batch = reader.typed(chunk)
            ledger.add(chunk.index, batch.frame[contract.key])
            written.append(_write_chunk(contract, manifest, root, runner, chunk, batch))
        repeated, again = ledger.repeated_across()
        for index in again:  # rare: re-read, so the window is never held
            chunk = chunks[index]
            batch = reader.typed(chunk)
            written[index] = _write_chunk(contract, manifest, root, runner, chunk, batch, repeated)
    except PartSizeMismatch:
        raise RuntimeError(
            f"{manifest.prefix}: the extract parts hold another number of records than "
            f"extract reported ({manifest.extracted.rows}): clear the run from `extract`"
        ) from None
    whole = TypedBatch(pd.DataFrame(), [], set(), [])
    whole.unknown_fields = set().union(*(w.unknown_fields for w in written))
    if written:  # a required column absent from every record is absent from every chunk
        absent = set.intersection(*(set(w.absent_required) for w in written))
        whole.absent_required = [c for c in written[0].absent_required if c in absent]
    enforce(contract, whole, merged_report([w.report for w in written]))
    return written


def _write_chunk(
    contract: Contract,
    manifest: RunManifest,
    root: StorageRoot,
    runner: SuiteRunner,
    chunk: Chunk,
    batch: TypedBatch,
    repeated: frozenset[Any] = frozenset(),
) -> _Written:
    """Check a typed chunk and write its accepted rows and its rejects."""
    report = runner.check(batch, repeated)
    rejected = batch.rejected_mask
    accepted_rows = batch.frame[~rejected]
    accepted_key = manifest.key(part_key(ACCEPTED_PREFIX, chunk.index, "csv"))
    rejects_key = manifest.key(part_key(REJECTS_PREFIX, chunk.index, "ndjson"))
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
    bounds = key_range(accepted_rows, contract)
    return _Written(
        report,
        Part(key=accepted_key, rows=accepted),
        Part(key=rejects_key, rows=rejects),
        None if bounds is None else (bounds[0], bounds[1]),
        batch.absent_required,
        batch.unknown_fields,
    )
