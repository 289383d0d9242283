"""The `citypulse` console script (installed by `pip install .`).

    citypulse backfill --dag-id D --from-date YYYY-MM-DD --to-date YYYY-MM-DD [airflow options]
    citypulse contracts check [--dir DIR]
    citypulse demo start|stop

Each subcommand hands its arguments to the module that does the work; `demo` needs the
development tooling (`citypulse_dev`), which ships beside the product in a checkout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

USAGE = __doc__.split("\n\n")[1].rstrip() if __doc__ else ""


def backfill(argv: list[str]) -> int:
    from citypulse.dags import backfill as command

    return command.main(argv)


def check_contracts(argv: list[str]) -> int:
    """Validate every contract of a folder (default: the configured one); exit 1 if any is
    broken, printing each error with its file and field, as Airflow would show it."""
    import argparse

    from citypulse.contracts.contract import load_contracts
    from citypulse.settings import CONTRACTS_DIR

    parser = argparse.ArgumentParser(prog="citypulse contracts check")
    parser.add_argument("--dir", type=Path, default=CONTRACTS_DIR, help="a folder of YAML files")
    args = parser.parse_args(argv)
    contracts, errors = load_contracts(args.dir)
    for contract in contracts:
        print(f"ok      {contract.dag_id} ({contract.portal}/{contract.dataset_id})")
    for error in errors:
        print(f"broken  {error}")
    if not contracts and not errors:
        print(f"no contract in {args.dir}")
    return 1 if errors or not contracts else 0


def contracts(argv: list[str]) -> int:
    if argv[:1] != ["check"]:
        print("usage: citypulse contracts check [--dir DIR]", file=sys.stderr)
        return 2
    return check_contracts(argv[1:])


def demo(argv: list[str]) -> int:
    try:
        from citypulse_dev import demo as command
    except ImportError:  # pragma: no cover - an install without the development tooling
        print("citypulse demo needs the citypulse_dev package", file=sys.stderr)
        return 2
    command.main(argv)
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "backfill": backfill,
    "contracts": contracts,
    "demo": demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(f"usage:\n{USAGE}")
        return 0
    if not args or args[0] not in COMMANDS:
        print(f"usage:\n{USAGE}", file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
