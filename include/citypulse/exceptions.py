"""Errors CityPulse raises on purpose, each with a message an operator can act on.

`transient` says whether trying again later may help (Airflow retries the task) or not (the
task fails at once: no retry can fix a refused query or a misconfiguration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citypulse.pipeline.validate.outcome import ValidationReport


class CityPulseError(Exception):
    """Base class of every CityPulse error."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ContractError(CityPulseError):
    """A YAML data contract is missing, unreadable or invalid."""


class PortalError(CityPulseError):
    """The Socrata portal refused a query (terminal) or kept failing after retries."""


class ValidationFailed(CityPulseError):
    """A batch failed validation: too many rejects or a required column is missing."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        # The validation report that made the batch fail.
        self.report = report


class WarehouseError(CityPulseError):
    """The warehouse could not be reached or configured."""


class StorageError(CityPulseError):
    """The storage root (CITYPULSE_STORAGE_URL) is misconfigured (terminal) or unreachable."""


class RunFilesMissing(CityPulseError):
    """A task's input files are gone (expired after the retention period, or removed): only
    a rerun from `extract` can bring them back."""


class ManifestError(CityPulseError):
    """A run manifest this CityPulse cannot read (written by another version)."""


class HandoffError(CityPulseError):
    """A hotspot retrain hand-off this CityPulse cannot read (written by another version)."""


class ParamsError(CityPulseError):
    """A run's params ask for what no run may do (an end before its start, a window longer
    than the contract allows): terminal."""


class SchemaDrift(CityPulseError):
    """The portal no longer has a column the contract requires: no record of the dataset can
    be loaded until the contract (or the portal) is put right (terminal)."""
