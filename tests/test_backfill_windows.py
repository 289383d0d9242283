"""`citypulse backfill --window`: a history split into reload runs of whole local days, each
at most the contract's `max_window_days` (the runs themselves: `test_backfill.py`)."""

from __future__ import annotations

import json
from datetime import date

import pytest


def test_monthly_windows_cover_every_day_once_partial_months_at_the_ends() -> None:
    from citypulse.dags.backfill import windows

    plan = windows(date(2023, 12, 20), date(2024, 3, 5), "month", 366)
    assert plan == [
        (date(2023, 12, 20), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 5)),
    ]
    assert windows(date(2024, 1, 1), date(2024, 1, 10), "4", 366) == [
        (date(2024, 1, 1), date(2024, 1, 4)),
        (date(2024, 1, 5), date(2024, 1, 8)),
        (date(2024, 1, 9), date(2024, 1, 10)),
    ]


def test_windows_refuse_what_a_run_refuses() -> None:
    from citypulse.dags.backfill import windows

    with pytest.raises(SystemExit, match="max_window_days"):
        windows(date(2024, 1, 1), date(2025, 1, 1), "400", 366)
    with pytest.raises(SystemExit, match="before"):
        windows(date(2024, 1, 2), date(2024, 1, 1), "month", 366)


def test_each_window_is_one_triggered_reload_run_named_by_its_days() -> None:
    from citypulse.dags.backfill import window_commands

    commands = window_commands("nyc_311", date(2010, 1, 1), date(2010, 2, 14), "month")
    assert [c[3:7] for c in commands] == [["dags", "trigger", "nyc_311", "--run-id"]] * 2
    assert [c[7] for c in commands] == [
        "history__2010-01-01__2010-01-31",
        "history__2010-02-01__2010-02-14",
    ]
    assert json.loads(commands[1][9]) == {"start_date": "2010-02-01", "end_date": "2010-02-14"}
