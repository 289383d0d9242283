"""One window through extract -> validate -> load: the run, written once.

`WindowRun` is a contract and a storage root; each stage is a method that takes and returns
the run manifest, so every caller runs the same steps with the same checks:

- the city DAG's tasks (`citypulse.dags.steps`) run one stage per task, the manifest
  travelling between them in XCom;
- the partition audit's repairs (`citypulse.pipeline.reconcile`) run all three in one process
  and load inside their own transaction;
- loaders of rows that need no portal or validation (generated history, tests) enter at load
  with `typed_rows`, which writes the rows as a validated run's objects.

Every validation is recorded (`citypulse.pipeline.validate.reports`), passed or failed,
whoever ran it. Imported only inside tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from citypulse.contracts.contract import Contract
from citypulse.exceptions import RunFilesMissing, ValidationFailed
from citypulse.pipeline.manifest import Extracted, Part, RunManifest, Validated
from citypulse.pipeline.windows import Window
from citypulse.settings import RUN_RETENTION_DAYS
from citypulse.storage import StorageRoot

if TYPE_CHECKING:
    import pandas as pd

    from citypulse.pipeline.load.batch import LoadResult
    from citypulse.portal.metadata import ViewMetadata
    from citypulse.warehouse.types import Connection


@dataclass(frozen=True)
class WindowRun:
    """The stages of one dataset's runs, over the storage root their files live under."""

    contract: Contract
    root: StorageRoot

    def extract(
        self,
        run_id: str,
        prefix: str,
        window: Window,
        *,
        incremental: bool = False,
        watermark: str | None = None,
        started: float | None = None,
        schema_check: Callable[[ViewMetadata], object] | None = None,
    ) -> RunManifest:
        """Read the window (and, if `incremental`, the changes since `watermark`) into parts
        under `prefix`, count-verified against the portal; the run's manifest. `schema_check`
        sees the portal's view metadata before any row is read (`drift_log.check_schema`)."""
        from citypulse.pipeline import extract
        from citypulse.pipeline.run_files import EXTRACT_PREFIX

        began = time.time() if started is None else started
        extracted = extract.extract_window(
            self.contract,
            window,
            self.root,
            f"{prefix}/{EXTRACT_PREFIX}",
            incremental=incremental,
            watermark=watermark,
            started=datetime.fromtimestamp(began, UTC),
            schema_check=schema_check,
        )
        return RunManifest.of_window(
            self.contract.dag_id,
            run_id,
            prefix,
            window,
            extracted,
            started=began,
            incremental=incremental,
            watermark_before=watermark,
        )

    def validate(self, manifest: RunManifest, *, stage: str = "validate") -> RunManifest:
        """Type and check the extract parts, write the accepted rows and the rejects, and
        record the report (also when validation fails, then ValidationFailed). `stage` says
        who validated: the run's own `validate`, or `reconcile` for an audit's repair."""
        from citypulse.pipeline.validate.reports import record_validation
        from citypulse.pipeline.validate.suite import validate_run

        self.require_objects(manifest, manifest.extracted.parts, stage)
        try:
            validated = validate_run(self.contract, manifest, self.root)
        except ValidationFailed as exc:
            record_validation(
                manifest, passed=False, report=exc.report, message=str(exc), stage=stage
            )
            raise
        record_validation(manifest, passed=True, report=validated.report, message=None, stage=stage)
        return manifest.with_validated(validated)

    def load(self, conn: Connection, manifest: RunManifest) -> LoadResult:
        """Load the validated run in the caller's transaction (COPY + upsert, rejects, audit
        row, watermark): it commits with the caller's connection, or not at all. A caller
        that did not write the run's objects itself checks them first (`require_objects`)."""
        from citypulse.pipeline.load.batch import load_batch

        return load_batch(conn, self.contract, manifest, self.root)

    def typed_rows(
        self,
        frame: pd.DataFrame,
        run_id: str,
        window: Window,
        rejects: Iterable[dict[str, Any]] = (),
    ) -> RunManifest:
        """A validated run's manifest for typed rows that need no validation (generated
        history, tests): the rows written under the run's prefix as its COPY part, `rejects`
        (record, reason, key) as its rejects part, both counted as extracted."""
        from citypulse.pipeline.run_files import (
            ACCEPTED_PREFIX,
            REJECTS_PREFIX,
            key_range,
            part_key,
            write_accepted,
            write_rejects,
        )
        from citypulse.storage import run_prefix

        prefix = run_prefix(self.contract.dag_id, run_id)
        accepted_key = f"{prefix}/{part_key(ACCEPTED_PREFIX, 0, 'csv')}"
        rejects_key = f"{prefix}/{part_key(REJECTS_PREFIX, 0, 'ndjson')}"
        rows = write_accepted(frame, self.contract, self.root.object(accepted_key), run_id)
        rejected = write_rejects(iter(rejects), self.root.object(rejects_key))
        bounds = key_range(frame, self.contract)
        extracted = Extracted(
            parts=(),
            rows=rows + rejected,
            window_rows=rows + rejected,
            change_rows=0,
            pages=0,
            retries=0,
            portal_rows=rows + rejected,
        )
        validated = Validated(
            accepted=(Part(key=accepted_key, rows=rows),),
            rejects=(Part(key=rejects_key, rows=rejected),),
            report=None,
            key_range=None if bounds is None else (bounds[0], bounds[1]),
        )
        return RunManifest.of_window(
            self.contract.dag_id, run_id, prefix, window, extracted, started=time.time()
        ).with_validated(validated)

    def require_objects(self, manifest: RunManifest, parts: Sequence[Part], stage: str) -> None:
        """RunFilesMissing, saying to clear from `extract`, when an input of `stage` is gone."""
        for part in parts:
            if not self.root.exists(part.key):
                raise RunFilesMissing(
                    f"{manifest.dag_id} run {manifest.run_id}: `{stage}` needs {part.key} under "
                    f"the {self.root.described}, and it is gone (run files are kept "
                    f"{RUN_RETENTION_DAYS:g} days after a run's last write, then housekeeping "
                    "removes them). Clear this run from `extract` (Clear, with downstream) to "
                    "fetch the window again"
                )


def load_typed_rows(
    conn: Connection,
    contract: Contract,
    frame: pd.DataFrame,
    run_id: str,
    window: Window,
    root: StorageRoot,
    rejects: Iterable[dict[str, Any]] = (),
) -> LoadResult:
    """Load typed rows that need no validation as one audited run of `run_id`, in the
    caller's transaction: `typed_rows`, then the same `load` every run goes through."""
    run = WindowRun(contract, root)
    return run.load(conn, run.typed_rows(frame, run_id, window, rejects))
