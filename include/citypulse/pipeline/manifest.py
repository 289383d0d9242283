"""The run manifest: what one task of a city run tells the next, in XCom.

One frozen, versioned object instead of a dict that grows from task to task. It names the
run's objects by keys relative to the storage root (never a local path) and carries the
counts each later task checks. `extract` writes it, `validate` returns it with its outcome,
`load` and `reconcile` read it. A manifest of another version is refused with a message
saying how to recover, so a run in flight across an upgrade never loads half-understood files.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import field_validator

from citypulse.exceptions import ManifestError
from citypulse.pipeline.validate.outcome import ValidationReport
from citypulse.pipeline.windows import Window
from citypulse.versioned import Frozen, read_versioned

# Raise when the manifest's meaning or a run file's layout changes.
MANIFEST_VERSION = 1


class Part(Frozen):
    """One object of a run: its key under the storage root and the records it holds."""

    key: str
    rows: int


class Extracted(Frozen):
    """What `extract` wrote: the portal's records in parts, window rows first."""

    parts: tuple[Part, ...]
    rows: int
    window_rows: int
    change_rows: int
    pages: int
    retries: int
    # What the portal counted for the same queries (`count(*)`): equal to `rows`.
    portal_rows: int
    # The next watermark (a run that absorbs changes): the newest change the portal held.
    watermark: str | None = None


class Validated(Frozen):
    """What `validate` wrote: typed rows ready for COPY, and the rejects with their reasons."""

    accepted: tuple[Part, ...]
    rejects: tuple[Part, ...]
    # What validation found (its JSON in XCom is `ValidationReport.to_json()`); None for rows
    # loaded without validation (`load_typed_rows`: generated history, tests).
    report: ValidationReport | None
    # The lowest and highest accepted key (None: no row).
    key_range: tuple[Any, Any] | None

    @field_validator("report", mode="before")
    @classmethod
    def _no_report(cls, value: Any) -> Any:
        # `{}` is how rows loaded without validation said "no report" before it had a type.
        return None if value == {} else value

    @property
    def accepted_rows(self) -> int:
        return sum(part.rows for part in self.accepted)

    @property
    def rejected_rows(self) -> int:
        return sum(part.rows for part in self.rejects)


class RunManifest(Frozen):
    """Where one run's objects are and what each task found."""

    version: int = MANIFEST_VERSION
    dag_id: str
    run_id: str
    prefix: str
    window_start: datetime
    window_end: datetime
    timezone: str
    started: float  # epoch second the extract began: the audit times the whole run
    incremental: bool
    watermark_before: str | None
    extracted: Extracted
    validated: Validated | None = None

    @classmethod
    def of_window(
        cls,
        dag_id: str,
        run_id: str,
        prefix: str,
        window: Window,
        extracted: Extracted,
        *,
        started: float,
        incremental: bool = False,
        watermark_before: str | None = None,
    ) -> RunManifest:
        """The manifest of a window just extracted (not validated yet)."""
        return cls(
            dag_id=dag_id,
            run_id=run_id,
            prefix=prefix,
            window_start=window.start,
            window_end=window.end,
            timezone=window.timezone,
            started=started,
            incremental=incremental,
            watermark_before=watermark_before,
            extracted=extracted,
        )

    @property
    def window(self) -> Window:
        return Window(self.window_start, self.window_end, self.timezone)

    def key(self, name: str) -> str:
        """The key of an object of this run."""
        return f"{self.prefix}/{name}"

    def with_validated(self, validated: Validated) -> RunManifest:
        return self.model_copy(update={"validated": validated})

    def require_validated(self) -> Validated:
        if self.validated is None:
            raise ManifestError(
                f"{self.dag_id} run {self.run_id}: this manifest was not validated; "
                "clear the run from `validate`"
            )
        return self.validated

    def to_xcom(self) -> dict[str, Any]:
        """Plain JSON for XCom (readable in the UI)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_xcom(cls, data: Any, *, task: str) -> RunManifest:
        """The manifest an upstream task returned, or ManifestError saying how to recover."""
        return read_versioned(
            cls,
            data,
            version=MANIFEST_VERSION,
            task=task,
            what="run manifest",
            error=ManifestError,
            recover="clear it from `extract` (Clear → downstream) to extract and validate it again",
            recover_malformed="clear the run from `extract`",
        )
