"""Schema drift: the portal's columns (its view metadata) against the contract's, before a
run reads any row.

Pure (a contract and a `ViewMetadata` in, typed `SchemaChange`s out), so every rule is tested
without a portal or a warehouse; `drift_log` records, alerts and fails on them. Three kinds:

- `added`: a data column at the portal that the contract neither loads nor lists in
  `ignore_fields` (the run ignores it);
- `removed`: a contract column whose wire name the portal no longer has (the run loads it as
  NULL, or fails at once when the column is required);
- `retyped`: a contract column whose Socrata type (`dataTypeName`) can no longer be loaded
  as the contract's type (`LOADS_AS`, by the Socrata type's family in
  `citypulse.portal.metadata.FAMILIES`).

System fields (`:id`, `:updated_at`, `:@computed_region_*`) are never drift. Plain Python:
importable anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from citypulse.contracts.column_types import column_type
from citypulse.contracts.contract import Column, Contract
from citypulse.portal.metadata import COORDINATES, FAMILIES, ViewMetadata

ChangeKind = Literal["added", "removed", "retyped"]

# The contract type families a portal column of each family may be loaded as. Text carries
# any value as a string, and the contract's type is the product's: validation types each value
# and rejects what does not parse (live portals send Seattle's latitude, NYC's unique_key and
# Montgomery's Yes/No flags as text). Numbers may be kept as text (codes: beats, zip codes),
# and any family as text. A point or location may only feed the contract's latitude/longitude.
LOADS_AS: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "integer", "number", "boolean", "timestamp"}),
    "number": frozenset({"integer", "number", "text"}),
    "timestamp": frozenset({"timestamp", "text"}),
    "boolean": frozenset({"boolean", "text"}),
    COORDINATES: frozenset({COORDINATES}),
}


@dataclass(frozen=True)
class SchemaChange:
    """One difference between the portal and the contract. `column` is the wire field name;
    `before` is what the contract expects (its column type; None for an added column),
    `after` what the portal says now (its `dataTypeName`; None for a removed column)."""

    change: ChangeKind
    column: str
    before: str | None
    after: str | None
    required: bool = False  # a removed or retyped column the contract requires

    @property
    def fatal(self) -> bool:
        """A required column gone: no record of the run could be loaded."""
        return self.change == "removed" and self.required

    def describe(self) -> str:
        if self.change == "added":
            return f"`{self.column}` added ({self.after}; not loaded)"
        if self.change == "removed":
            kind = "required" if self.required else "loaded as NULL"
            return f"`{self.column}` removed ({self.before}, {kind})"
        return f"`{self.column}` retyped ({self.after}, the contract loads {self.before})"


def loads_as(contract: Contract, column: Column, data_type: str) -> bool:
    """Whether values of Socrata type `data_type` can be loaded into the contract's column."""
    accepted = LOADS_AS[FAMILIES.get(data_type, "text")]
    if column_type(column.type).family in accepted:
        return True
    coordinate = column.name in (contract.latitude, contract.longitude)
    return coordinate and COORDINATES in accepted


def schema_changes(contract: Contract, view: ViewMetadata) -> list[SchemaChange]:
    """The portal's columns against the contract's: removed and retyped in contract order,
    then added in the portal's order."""
    changes: list[SchemaChange] = []
    for column in contract.columns:
        wire = column.wire_name
        if wire.startswith(":"):
            continue  # a system field: every dataset has it, whatever its view lists
        found = view.column(wire)
        if found is None:
            changes.append(SchemaChange("removed", wire, column.type, None, column.required))
        elif not loads_as(contract, column, found.data_type):
            changes.append(
                SchemaChange("retyped", wire, column.type, found.data_type, column.required)
            )
    known = {c.wire_name for c in contract.columns} | set(contract.ignore_fields)
    changes.extend(
        SchemaChange("added", c.field_name, None, c.data_type)
        for c in view.data_columns
        if c.field_name not in known
    )
    return changes
