"""The column types a data contract may declare: one registry that the contracts, both
typing paths (Arrow and pandas), the SODA stand-in and the generator read, so a new type is
added here once.

Light on purpose (no pandas, no Arrow): contracts import it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

# Wire text the Arrow path types in C++ (anything else goes through the pandas path, a few
# values at a time, so both paths agree on every value and every reason).
_DAY, _CLOCK = r"[0-9]{4}-[0-9]{2}-[0-9]{2}", r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
INTEGER_PATTERN = r"^-?[0-9]{1,15}$"
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(\.[0-9]{1,17})?$"
FLOATING_PATTERN = rf"^{_DAY}({_CLOCK})?$"
OFFSET_PATTERN = rf"^{_DAY}{_CLOCK}(Z|[+-][0-9]{{2}}:[0-9]{{2}})$"


@dataclass(frozen=True)
class ColumnType:
    """One type: its PostgreSQL name, how its values are typed, how Socrata compares it."""

    name: str  # the typed table's column type (also what a contract writes)
    family: str  # text | integer | number | boolean | timestamp
    soql: str  # how Socrata compares and sorts the column (what the stand-in declares)
    limit: int | None = None  # integers: the largest magnitude the column holds
    arrow: tuple[str, str] | None = None  # (wire pattern, Arrow type) Arrow types itself
    # Timestamps: a local wall time of the city (a value with an offset becomes the city's
    # local time of that instant) rather than an instant kept as UTC.
    local: bool = False
    day_only: bool = False  # timestamps: truncated to the day


COLUMN_TYPES: dict[str, ColumnType] = {
    t.name: t
    for t in (
        ColumnType("text", "text", "text"),
        ColumnType(
            "bigint", "integer", "number", limit=2**63 - 1, arrow=(INTEGER_PATTERN, "int64")
        ),
        ColumnType(
            "integer", "integer", "number", limit=2**31 - 1, arrow=(INTEGER_PATTERN, "int64")
        ),
        ColumnType("double precision", "number", "number", arrow=(DECIMAL_PATTERN, "float64")),
        ColumnType("boolean", "boolean", "boolean"),
        ColumnType(
            "timestamp", "timestamp", "timestamp", arrow=(FLOATING_PATTERN, "timestamp"), local=True
        ),
        ColumnType("timestamptz", "timestamp", "timestamp", arrow=(FLOATING_PATTERN, "timestamp")),
        ColumnType(
            "date",
            "timestamp",
            "timestamp",
            arrow=(FLOATING_PATTERN, "timestamp"),
            local=True,
            day_only=True,
        ),
    )
}


def column_type(name: str) -> ColumnType:
    """The registered type of that name; KeyError names the known ones."""
    try:
        return COLUMN_TYPES[name]
    except KeyError:
        raise KeyError(f"no column type {name!r}; known: {sorted(COLUMN_TYPES)}") from None
