"""What the partition audit believes of the portal's answers before it changes anything.

An outage is not a deletion: a portal that counts far fewer records than the warehouse holds
(`200 []` behind a broken proxy, an index rebuilding) is refused by the outage floor, over
the days the warehouse holds and again over each stretch of days read again. A grouped
count that disagrees with the day's own records (count-verified) by the same amount audit
after audit is a dispute: reported, neither repaired again nor recorded as agreed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from citypulse.contracts.contract import Contract


@dataclass(frozen=True)
class DayCount:
    """One day as the portal or the warehouse accounts for it."""

    rows: int
    changed: str | None  # newest change, canonical (`YYYY-MM-DDTHH:MM:SS.mmm`, UTC if fixed)


NO_ROWS = DayCount(0, None)

_NOT_A_DELETION = (
    "An outage or a broken answer, not a deletion: nothing was read again or deleted, and "
    "the audit is retried. If the portal really removed that much, set `reconcile."
    "outage_floor: 0` in the contract for one audit"
)


def outage(
    contract: Contract, portal: dict[date, DayCount], warehouse: dict[date, DayCount]
) -> str | None:
    """Why the portal's counts over the days the warehouse holds (both given for those days
    only) read as an outage (None when they do not): under `outage_floor` of the warehouse's
    rows, or records for under that share of the days the warehouse holds rows for."""
    floor = contract.reconcile.outage_floor if contract.reconcile else 0.0
    held = [day for day, count in warehouse.items() if count.rows > 0]
    ours = sum(warehouse[day].rows for day in held)
    theirs = sum(count.rows for count in portal.values())
    answered = sum(1 for day in held if portal.get(day, NO_ROWS).rows > 0)
    if theirs >= floor * ours and answered >= floor * len(held):
        return None
    return (
        f"{contract.dag_id}: over the {len(warehouse):,} days the warehouse holds, the portal "
        f"counts {theirs:,} records (any for {answered:,} of the {len(held):,} days holding "
        f"rows) where the warehouse holds {ours:,}: below the outage floor ({floor:.0%}). "
        + _NOT_A_DELETION
    )


def short_re_read(
    contract: Contract, first: date, last: date, counted: int, read: int
) -> str | None:
    """Why reading days again (`read` records) is not believed against their grouped count
    (`counted`): fewer than `outage_floor` of it. None when it is believed."""
    floor = contract.reconcile.outage_floor if contract.reconcile else 0.0
    if read >= floor * counted:
        return None
    return (
        f"{contract.dag_id}: the portal's grouped count says {counted:,} records for {first} .. "
        f"{last}, but reading those days again read {read:,} records (its own count agreeing): "
        f"below the outage floor ({floor:.0%}). " + _NOT_A_DELETION
    )


@dataclass(frozen=True)
class Dispute:
    """A day whose records, read again by a repair, disagree with its grouped count."""

    grouped_rows: int
    record_rows: int
    changed: str | None = None  # the grouped query's newest change of the day then
    reported: bool = False

    @property
    def gap(self) -> int:
        return self.grouped_rows - self.record_rows

    def as_dict(self, day: date) -> dict[str, object]:
        return {
            "day": day.isoformat(),
            "grouped_rows": self.grouped_rows,
            "record_rows": self.record_rows,
        }


def still_disputed(
    day: date,
    portal: dict[date, DayCount],
    warehouse: dict[date, DayCount],
    disputes: dict[date, Dispute],
    compare_changes: bool,
) -> bool:
    """Whether a differing day differs as a repair already found it: the grouped count off
    the day's records by the same amount, and (comparing changes) no change newer than
    the warehouse's or the grouped query's then. Reading it again would change nothing."""
    known = disputes.get(day)
    theirs, ours = portal.get(day, NO_ROWS), warehouse.get(day, NO_ROWS)
    if known is None or theirs.rows - ours.rows != known.gap:
        return False
    if compare_changes and theirs.changed is not None:
        seen = [c for c in (ours.changed, known.changed) if c is not None]
        return bool(seen) and theirs.changed <= max(seen)
    return True
