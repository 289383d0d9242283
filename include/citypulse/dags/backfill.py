"""Backfill whole local days: `citypulse backfill --dag-id D --from-date --to-date`.

Airflow reads `airflow backfill create --from-date/--to-date` as UTC instants and picks the
runs whose logical date (the local midnight that starts each day, 04:00-08:00 UTC for US
cities) falls between them, so `--to-date 2025-10-31` would stop at Oct 30 for every US
city. This wrapper turns local dates (both inclusive) into those exact instants and runs
the real `airflow backfill create`; every other option passes through.

A whole history goes faster in windows than day by day (one run's fixed cost, its task
processes and imports, is paid per window): `--window month` (or a number of days, at most
the contract's `max_window_days`) triggers one reload run per window instead
(`airflow dags trigger` with params `start_date`/`end_date`, run id
`history__<first>__<last>`, so a window triggered again is refused, not duplicated); the
DAG's `max_active_runs` and the `socrata_api` pool bound how many run at once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from citypulse.contracts.contract import contract_by_id


def logical_bounds(timezone: str, first: date, last: date) -> tuple[str, str]:
    """The UTC instants of the local midnights starting `first` and `last`."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last, datetime.min.time(), tzinfo=zone)
    if end < start:
        raise SystemExit(f"--to-date {last} is before --from-date {first}")
    return start.astimezone(ZoneInfo("UTC")).isoformat(), end.astimezone(
        ZoneInfo("UTC")
    ).isoformat()


def command(dag_id: str, first: date, last: date, extra: list[str]) -> list[str]:
    """The `airflow backfill create` command covering local days first..last of the DAG."""
    start, end = logical_bounds(contract_by_id(dag_id).timezone, first, last)
    return [
        sys.executable, "-m", "airflow", "backfill", "create",
        "--dag-id", dag_id, "--from-date", start, "--to-date", end, *extra,
    ]  # fmt: skip


def windows(first: date, last: date, size: str, most_days: int) -> list[tuple[date, date]]:
    """Local days first..last (inclusive) in windows of `size`: `month` (calendar months,
    the first and last partial) or a number of days; none longer than `most_days`."""
    if last < first:
        raise SystemExit(f"--to-date {last} is before --from-date {first}")
    days = None if size == "month" else int(size)
    if days is not None and not 1 <= days <= most_days:
        raise SystemExit(f"--window {size}: from 1 to {most_days} days (max_window_days)")
    out: list[tuple[date, date]] = []
    start = first
    while start <= last:
        if days is None:
            following = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = following - timedelta(days=1)
        else:
            end = start + timedelta(days=days - 1)
        end = min(end, last)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def window_commands(dag_id: str, first: date, last: date, size: str) -> list[list[str]]:
    """One `airflow dags trigger` per window: a reload run of those local days."""
    contract = contract_by_id(dag_id)
    commands = []
    for start, end in windows(first, last, size, contract.max_window_days):
        conf = json.dumps({"start_date": start.isoformat(), "end_date": end.isoformat()})
        run_id = f"history__{start.isoformat()}__{end.isoformat()}"
        trigger = [sys.executable, "-m", "airflow", "dags", "trigger", dag_id]
        commands.append([*trigger, "--run-id", run_id, "--conf", conf])
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="citypulse backfill", description=__doc__)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--from-date", required=True, type=date.fromisoformat)
    parser.add_argument("--to-date", required=True, type=date.fromisoformat)
    parser.add_argument(
        "--window",
        help="`month` or a number of days: one reload run per window instead of a run per day",
    )
    args, extra = parser.parse_known_args(argv)
    if args.window is None:
        cmd = command(args.dag_id, args.from_date, args.to_date, extra)
        print("+ " + " ".join(cmd[2:]), flush=True)
        return subprocess.run(cmd, check=False).returncode
    if extra:
        parser.error(f"--window triggers runs; these options apply to backfills only: {extra}")
    failed = 0
    for cmd in window_commands(args.dag_id, args.from_date, args.to_date, args.window):
        print("+ " + " ".join(cmd[2:]), flush=True)
        failed += subprocess.run(cmd, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
