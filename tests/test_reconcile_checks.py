"""What the partition audit believes of the portal (`citypulse.pipeline.reconcile_checks`):
an answer far below the warehouse is an outage, not a deletion; a grouped count that keeps
disagreeing with its day's records by the same amount is a dispute, not a repair."""

from __future__ import annotations

from datetime import date
from typing import Any

from citypulse.pipeline.reconcile_checks import (
    DayCount,
    Dispute,
    outage,
    short_re_read,
    still_disputed,
)
from helpers import by_id

DAYS = [date(2020, 1, d) for d in range(1, 11)]


def held(rows: int) -> dict[date, DayCount]:
    return {day: DayCount(rows, None) for day in DAYS}


def test_an_empty_or_far_smaller_portal_is_an_outage(contracts: list[Any]) -> None:
    contract = by_id(contracts, "chicago_crime")  # outage_floor 0.5
    why = outage(contract, {}, held(100))
    assert why is not None and "portal counts 0 records" in why and "holds 1,000" in why
    assert outage(contract, held(40), held(100)) is not None  # 40 % of the rows
    # Most days answered with nothing, the total still above the floor: an outage too.
    half = {day: DayCount(300 if i < 4 else 0, None) for i, day in enumerate(DAYS)}
    assert outage(contract, half, held(100)) is not None


def test_genuine_deletions_are_no_outage(contracts: list[Any]) -> None:
    contract = by_id(contracts, "chicago_crime")
    fewer = {**held(100), DAYS[3]: DayCount(97, None)}  # a few records of one day
    assert outage(contract, fewer, held(100)) is None
    gone = {day: count for day, count in held(100).items() if day != DAYS[0]}  # a whole day
    assert outage(contract, gone, held(100)) is None
    assert outage(contract, {}, {DAYS[0]: DayCount(0, None)}) is None  # nothing held
    lax = contract.model_copy(
        update={"reconcile": contract.reconcile.model_copy(update={"outage_floor": 0.0})}
    )
    assert outage(lax, {}, held(100)) is None  # the floor turned off


def test_a_re_read_far_below_its_grouped_count_is_not_believed(contracts: list[Any]) -> None:
    contract = by_id(contracts, "chicago_crime")
    assert short_re_read(contract, DAYS[0], DAYS[1], 200, 199) is None
    assert short_re_read(contract, DAYS[0], DAYS[1], 0, 0) is None  # the days are gone
    why = short_re_read(contract, DAYS[0], DAYS[1], 200, 0)
    assert why is not None and "says 200 records" in why and "read 0 records" in why


def test_a_day_is_disputed_while_its_gap_is_the_one_a_repair_found() -> None:
    day = DAYS[0]
    known = {day: Dispute(12, 10, "2020-01-05T00:00:00.000")}
    ours = {day: DayCount(10, "2020-01-05T00:00:00.000")}

    def disputed(rows: int, changed: str | None, compare: bool = True) -> bool:
        return still_disputed(day, {day: DayCount(rows, changed)}, ours, known, compare)

    assert disputed(12, "2020-01-05T00:00:00.000")
    assert not disputed(13, "2020-01-05T00:00:00.000")  # another gap: read it again
    assert not disputed(12, "2020-02-01T00:00:00.000")  # a newer change: read it again
    assert disputed(12, "2020-02-01T00:00:00.000", compare=False)  # a re-stamping portal
    assert not still_disputed(day, {day: DayCount(12, None)}, ours, {}, True)  # never found
