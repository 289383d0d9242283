"""Report broken contracts as Airflow import errors without losing the healthy DAGs.

Airflow records an import error per DAG file. Raising at module level would drop all four
city DAGs for one bad YAML file; instead the factory file exposes a placeholder DAG whose
validation fails. The DagBag then records the error (naming the YAML file and field) and
keeps every DAG that validated.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from citypulse.exceptions import ContractError


class ContractErrorDag(DAG):
    """A DAG that never bags: its validation raises the contract errors it carries."""

    def validate(self) -> None:
        raise ContractError(self.description or "invalid data contract")


def contract_error_dag(errors: list[ContractError]) -> DAG:
    """A placeholder DAG whose validation fails with every contract error, one per line."""
    message = "\n".join(str(error) for error in errors)
    return ContractErrorDag(
        dag_id="citypulse_contract_errors",
        description=f"{len(errors)} broken data contract(s):\n{message}",
        schedule=None,
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
    )
