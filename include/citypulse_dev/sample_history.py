"""Weeks of generated history loaded straight into the warehouse, for the retrain demo and tests.

The hotspot model needs far more history than the city DAGs' 7-day demo backfill. Running a
city DAG per day would take minutes; this does what the DAG's validate and load tasks do for
the generator's well-formed records (type, stage, COPY + upsert with an audit row, build the
views), several days per load, so eight weeks of four cities load in seconds.

    python -m citypulse_dev.sample_history --weeks 20
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from citypulse.contracts.contract import Contract, load_contracts
from citypulse.pipeline.run import load_typed_rows
from citypulse.pipeline.validate.typing_rules import type_records
from citypulse.pipeline.views import build_views
from citypulse.pipeline.windows import window_for_dates
from citypulse.storage import StorageRoot
from citypulse.warehouse.connection import connect
from citypulse.warehouse.types import Connection
from citypulse_dev.generator import generate_day

DAYS_PER_LOAD = 14


def well_formed_records(
    contract: Contract, first: date, last: date, *, seed: int, records_per_day: int | None
) -> list[dict[str, Any]]:
    """The generator's well-formed records of local days `first` .. `last` (inclusive)."""
    return generated_records(contract, first, last, seed=seed, records_per_day=records_per_day)[0]


def generated_records(
    contract: Contract, first: date, last: date, *, seed: int, records_per_day: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The generator's records of local days `first` .. `last` (inclusive): the well-formed
    ones, and the malformed ones as reject rows (record, reason, key) naming their kind,
    which validation is shown to catch (tests/test_generator.py).

    Socrata system fields other than the key (`:updated_at`, ...) are the portal's to stamp
    (the stand-in does it when serving), so they are left out here and load as NULL.
    """
    stamped = {
        c.wire_name
        for c in contract.columns
        if c.wire_name.startswith(":") and c.name != contract.key
    }
    key_field = contract.key_column.wire_name
    records: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    day = first
    while day <= last:
        generated = generate_day(contract, day, seed=seed, records=records_per_day)
        for i, record in enumerate(generated.records):
            for field in stamped & record.keys():
                del record[field]
            kind = generated.malformed.get(i)
            if kind is None:
                records.append(record)
            else:
                reason = f"{kind.replace('_', ' ')} (generated malformed record)"
                rejects.append({"record": record, "reason": reason, "key": record.get(key_field)})
        day += timedelta(days=1)
    return records, rejects


def load_days(
    conn: Connection,
    contract: Contract,
    first: date,
    last: date,
    *,
    seed: int = 7,
    records_per_day: int | None = None,
) -> int:
    """Type, stage and load the generated days `first` .. `last` as one audited run.

    The caller's connection commits; one load per transaction (its staging table is
    dropped on commit).
    """
    records, rejects = generated_records(
        contract, first, last, seed=seed, records_per_day=records_per_day
    )
    batch = type_records(contract, records)
    frame = batch.frame[~batch.rejected_mask]
    window = window_for_dates(first.isoformat(), last.isoformat(), contract.timezone)
    run_id = f"sample_history__{first.isoformat()}__{last.isoformat()}"
    with tempfile.TemporaryDirectory(prefix="citypulse-history-") as folder:
        root = StorageRoot(Path(folder).as_uri())
        loaded = load_typed_rows(conn, contract, frame, run_id, window, root, rejects=rejects)
    return loaded.loaded


def load_history(
    contracts: Sequence[Contract],
    first: date,
    last: date,
    *,
    dsn: str | None = None,
    seed: int = 7,
    records_per_day: int | None = None,
    views_over: Sequence[Contract] | None = None,
) -> dict[str, int]:
    """Load `first` .. `last` for every contract and build the views; rows loaded per city.
    `views_over`: the cities the `incidents` view spans (default: `contracts`)."""
    loaded: dict[str, int] = {}
    everyone = list(contracts if views_over is None else views_over)
    for contract in sorted(contracts, key=lambda c: c.dag_id):
        start, total = first, 0
        while start <= last:
            end = min(last, start + timedelta(days=DAYS_PER_LOAD - 1))
            # One transaction per load, as in the DAG (its staging table drops on commit).
            with connect(dsn) as conn:
                total += load_days(
                    conn, contract, start, end, seed=seed, records_per_day=records_per_day
                )
            start = end + timedelta(days=1)
        with connect(dsn) as conn, conn.cursor() as cur:
            build_views(cur, contract, everyone)
        loaded[contract.dag_id] = total
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weeks",
        type=int,
        default=20,
        help="how many weeks of history (the retrain's defaults need 19, 22 for a city "
        "whose data is 7 days late)",
    )
    parser.add_argument(
        "--last",
        type=date.fromisoformat,
        default=date.today() - timedelta(days=1),
        help="last local day loaded (inclusive); default yesterday",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records-per-day", type=int, default=None)
    args = parser.parse_args(argv)
    contracts, errors = load_contracts()
    for error in errors:
        print(f"skipped: {error}")
    first = args.last - timedelta(days=7 * args.weeks - 1)
    loaded = load_history(
        contracts, first, args.last, seed=args.seed, records_per_day=args.records_per_day
    )
    for city, rows in loaded.items():
        print(f"{city}: {rows} rows for {first} .. {args.last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
