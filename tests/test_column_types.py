"""The column-type registry (`citypulse.contracts.column_types`) is the one place a type is spelled:
a contract may declare any registered type, the stand-in declares it to SoQL as registered,
the generator makes values for it, both typing paths type it alike, and the warehouse gets a
column of its PostgreSQL type."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from citypulse.contracts.column_types import COLUMN_TYPES
from conftest import ROOT, query

DAY = date(2025, 10, 13)


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """NYC 311's contract plus one unhinted column of every registered type."""
    from citypulse.contracts.contract import load_contract

    raw = yaml.safe_load((ROOT / "include" / "contracts" / "nyc_311.yaml").read_text())
    raw["columns"] += [
        {"name": f"extra_{name.replace(' ', '_')}", "type": name} for name in COLUMN_TYPES
    ]
    path: Path = tmp_path_factory.mktemp("types") / "nyc_311.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_contract(path)


def test_a_contract_refuses_a_type_the_registry_does_not_know(tmp_path: Path) -> None:
    from citypulse.contracts.contract import load_contracts

    raw = yaml.safe_load((ROOT / "include" / "contracts" / "nyc_311.yaml").read_text())
    raw["columns"].append({"name": "money", "type": "numeric(12,2)"})
    (tmp_path / "nyc_311.yaml").write_text(yaml.safe_dump(raw))
    _, (error,) = load_contracts(tmp_path)
    assert "'numeric(12,2)' is not a column type" in str(error)
    assert all(name in str(error) for name in COLUMN_TYPES)


def test_every_registered_type_is_declared_generated_typed_and_stored(
    every_type: Any, fresh_warehouse: str, tmp_path: Path
) -> None:
    from citypulse.pipeline.run_files import read_wire_table
    from citypulse.pipeline.validate.typing_rules import type_records, type_table
    from citypulse.warehouse.connection import connect
    from citypulse.warehouse.tables import ensure_schema, ensure_table
    from citypulse_dev.generator import generate_day, write_ndjson
    from citypulse_dev.standin.catalog import wire_types

    extras = [c for c in every_type.columns if c.name.startswith("extra_")]
    declared = wire_types(every_type)
    assert {c.name: declared[c.wire_name] for c in extras} == {
        c.name: COLUMN_TYPES[c.type].soql for c in extras
    }
    records = generate_day(every_type, DAY, seed=3, records=50).records
    assert all(any(c.wire_name in r for r in records) for c in extras)
    path = tmp_path / "extract.ndjson"
    write_ndjson(records, path)
    fast = type_table(every_type, read_wire_table(path, every_type), None)
    slow = type_records(every_type, records)
    assert fast is not None
    for column in extras:
        a = fast.frame[column.name].astype(object).where(fast.frame[column.name].notna(), None)
        b = slow.frame[column.name].astype(object).where(slow.frame[column.name].notna(), None)
        assert a.tolist() == b.tolist(), column.name
        assert not any(column.name in reason for row in slow.reasons for reason in row)
    with connect() as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, every_type)
    stored = dict(
        query(
            fresh_warehouse,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'citypulse' AND table_name = 'nyc_311'",
        )
    )
    spelled = {
        "timestamp": "timestamp without time zone",
        "timestamptz": "timestamp with time zone",
    }
    for column in extras:
        assert stored[column.name] == spelled.get(column.type, column.type)
