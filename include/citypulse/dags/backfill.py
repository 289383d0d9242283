"""Backfill whole local days: `citypulse backfill --dag-id D --from-date --to-date`.

Airflow reads `airflow backfill create --from-date/--to-date` as UTC instants and picks the
runs whose logical date (the local midnight that starts each day, 04:00-08:00 UTC for US
cities) falls between them, so `--to-date 2025-10-31` would stop at Oct 30 for every US
city. This wrapper turns local dates (both inclusive) into those exact instants and runs
the real `airflow backfill create`; every other option passes through.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import date, datetime
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="citypulse backfill", description=__doc__)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--from-date", required=True, type=date.fromisoformat)
    parser.add_argument("--to-date", required=True, type=date.fromisoformat)
    args, extra = parser.parse_known_args(argv)
    cmd = command(args.dag_id, args.from_date, args.to_date, extra)
    print("+ " + " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
