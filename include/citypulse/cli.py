"""The `citypulse` console script (installed by `pip install .`).

    citypulse backfill --dag-id D --from-date YYYY-MM-DD --to-date YYYY-MM-DD [airflow options]
    citypulse contracts check [--dir DIR]
    citypulse contract init --portal DOMAIN --dataset 4x4 [--dag-id D] [--timezone TZ] [--out F]
    citypulse contract check FILE
    citypulse contract schema
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


def init_contract(argv: list[str]) -> int:
    """Draft a contract from a portal's view metadata and a few profile queries; write it
    (to --out, else standard output) and print what a person must still review."""
    import argparse
    from datetime import date

    from citypulse.contracts.draft import render
    from citypulse.contracts.scaffold import Options, draft_contract
    from citypulse.exceptions import PortalError
    from citypulse.portal.profile import portal_client, profile_dataset

    parser = argparse.ArgumentParser(prog="citypulse contract init")
    parser.add_argument("--portal", required=True, help="the portal's domain, e.g. data.x.gov")
    parser.add_argument("--dataset", required=True, help="the dataset's 4x4 id, e.g. erm2-nwe9")
    parser.add_argument("--dag-id", help="the DAG id (default: from the dataset's name)")
    parser.add_argument("--timezone", help="IANA zone (default: found from the coordinates)")
    parser.add_argument("--out", type=Path, help="the YAML file to write (default: stdout)")
    args = parser.parse_args(argv)
    options = Options(args.portal, args.dataset, args.dag_id, args.timezone, date.today())
    try:
        with portal_client(args.portal, args.dataset) as client:
            metadata = client.metadata()
            profile = profile_dataset(client, metadata, options.today)
        draft = draft_contract(metadata, profile, options)
    except (PortalError, ValueError) as exc:
        print(f"contract init: {exc}", file=sys.stderr)
        return 1
    text = render(draft)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(draft.columns)} columns, {profile.queries} requests)")
    print("review before use:", file=sys.stderr if args.out is None else sys.stdout)
    for item in draft.review:
        print(f"  - {item}", file=sys.stderr if args.out is None else sys.stdout)
    return 0


def check_contract(argv: list[str]) -> int:
    """Validate one contract file; exit 1 printing the error with its field."""
    import argparse

    from citypulse.contracts.contract import load_contract
    from citypulse.exceptions import ContractError

    parser = argparse.ArgumentParser(prog="citypulse contract check")
    parser.add_argument("file", type=Path, help="a contract YAML file")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.file)
    except ContractError as exc:
        print(f"broken  {exc}")
        return 1
    print(f"ok      {contract.dag_id} ({contract.portal}/{contract.dataset_id})")
    return 0


def contract_schema(argv: list[str]) -> int:
    """Print the contract model's JSON Schema (for editors and CI)."""
    import json

    from citypulse.contracts.contract import Contract

    if argv:
        print("usage: citypulse contract schema", file=sys.stderr)
        return 2
    print(json.dumps(Contract.model_json_schema(), indent=2))
    return 0


CONTRACT_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "init": init_contract,
    "check": check_contract,
    "schema": contract_schema,
}


def contract(argv: list[str]) -> int:
    if not argv or argv[0] not in CONTRACT_COMMANDS:
        print(f"usage: citypulse contract {'|'.join(CONTRACT_COMMANDS)} ...", file=sys.stderr)
        return 2
    return CONTRACT_COMMANDS[argv[0]](argv[1:])


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
    "contract": contract,
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
