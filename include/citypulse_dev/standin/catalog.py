"""What the stand-in must know of each contract's dataset to answer SoQL like Socrata."""

from __future__ import annotations

from typing import Any

from citypulse.contracts.column_types import column_type
from citypulse.contracts.contract import Contract


def wire_types(contract: Contract) -> dict[str, str]:
    """Wire field -> SoQL type for the contract's non-system columns."""
    return {
        c.wire_name: column_type(c.type).soql
        for c in contract.columns
        if not c.wire_name.startswith(":")
    }


def declare_contracts(standin: Any, contracts: list[Contract]) -> None:
    """Declare every contract's dataset, so numbers sort as numbers even before data lands,
    with its key as the row identifier (unless the key is a system field such as `:id`)."""
    for contract in contracts:
        key = contract.key_column.wire_name
        standin.declare(
            contract.dataset_id, wire_types(contract), key=None if key.startswith(":") else key
        )
