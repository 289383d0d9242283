"""Errors CityPulse raises on purpose, each with a message an operator can act on."""

from __future__ import annotations


class CityPulseError(Exception):
    """Base class of every CityPulse error."""


class ContractError(CityPulseError):
    """A YAML data contract is missing, unreadable or invalid."""


class PortalError(CityPulseError):
    """The Socrata portal refused a query or kept failing after retries.

    `transient` says whether trying again later may help (Airflow retries the task) or not
    (a refused query: the task fails at once).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ValidationFailed(CityPulseError):
    """A batch failed validation: too many rejects or a required column is missing."""


class WarehouseError(CityPulseError):
    """The warehouse could not be reached or configured."""
