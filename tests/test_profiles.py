"""Sample profiles: the generator's settings live in citypulse_dev/samples/, not in contracts."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from citypulse.contracts.contract import load_contract, load_contracts
from citypulse.exceptions import ContractError
from citypulse_dev.generator import generate_day
from citypulse_dev.profiles import (
    SAMPLES_DIR,
    ProfileError,
    SampleProfile,
    sample_profile,
)

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "include" / "contracts"
CONTRACT_FILES = sorted(CONTRACTS_DIR.glob("*.yaml"))
DAY = date(2026, 11, 20)


def _keys(node: Any) -> set[str]:
    """Every mapping key anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keys(value)}
    if isinstance(node, list):
        return {k for value in node for k in _keys(value)}
    return set()


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: p.stem)
def test_contracts_hold_no_sample_settings(path: Path) -> None:
    assert "sample" not in _keys(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_every_contract_has_a_profile_and_every_profile_a_contract() -> None:
    contracts, errors = load_contracts(CONTRACTS_DIR)
    assert contracts and not errors
    assert {c.dag_id for c in contracts} == {p.stem for p in SAMPLES_DIR.glob("*.yaml")}
    for contract in contracts:
        profile = sample_profile(contract)  # raises if it names a column the contract lacks
        assert profile != SampleProfile() and profile.columns, contract.dag_id


def test_a_contract_still_holding_sample_settings_is_refused_and_told_where_they_went(
    tmp_path: Path,
) -> None:
    raw = yaml.safe_load((CONTRACTS_DIR / "nyc_311.yaml").read_text())
    raw["sample"] = {"records_per_day": 10}
    raw["columns"][0]["sample"] = {"derive": "key"}
    path = tmp_path / "nyc_311.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    message = str(caught.value)
    assert str(path) in message
    assert "field 'sample'" in message and "columns[0] (unique_key).sample" in message
    assert "include/citypulse_dev/samples/nyc_311.yaml" in message


def test_a_copied_contract_finds_its_profile_by_dag_id(tmp_path: Path) -> None:
    shutil.copy(CONTRACTS_DIR / "seattle_crime.yaml", tmp_path / "seattle_crime.yaml")
    (contract,) = load_contracts(tmp_path)[0]
    assert sample_profile(contract).records_per_day == 250
    assert (
        generate_day(contract, DAY).records
        == generate_day(load_contract(CONTRACTS_DIR / "seattle_crime.yaml"), DAY).records
    )


def test_a_new_contract_without_a_profile_still_generates(tmp_path: Path) -> None:
    text = (CONTRACTS_DIR / "seattle_crime.yaml").read_text()
    text = text.replace("dag_id: seattle_crime", "dag_id: tacoma_crime")
    text = text.split("\ndashboard:")[0]  # its charts draw seattle_crime's views
    (tmp_path / "tacoma_crime.yaml").write_text(text)
    (contract,) = load_contracts(tmp_path)[0]
    assert sample_profile(contract) == SampleProfile()
    generated = generate_day(contract, DAY, seed=3)
    assert generated.records
    key = contract.key_column.wire_name
    assert all(r.get(key) and r.get(contract.event_column.wire_name) for r in generated.records)


def test_a_dataset_without_a_place_generates_records_without_coordinates(
    tmp_path: Path,
) -> None:
    from citypulse_dev.contract_copies import contract_copy

    raw = yaml.safe_load((CONTRACTS_DIR / "chicago_crime.yaml").read_text())
    copy = contract_copy(raw, "chicago_unplaced", "unpl-aced", placed=False)
    (tmp_path / "chicago_unplaced.yaml").write_text(yaml.safe_dump(copy))
    (contract,) = load_contracts(tmp_path)[0]
    assert not contract.mapped
    generated = generate_day(contract, DAY, seed=3)
    assert len(generated.records) > 100 and generated.malformed
    assert "out_of_bbox" not in generated.malformed.values()
    assert not {"latitude", "longitude", "location"} & {f for r in generated.records for f in r}


def test_a_profile_placing_records_of_a_dataset_without_a_place_is_refused(
    tmp_path: Path,
) -> None:
    from citypulse_dev.contract_copies import contract_copy

    raw = yaml.safe_load((CONTRACTS_DIR / "chicago_crime.yaml").read_text())
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump(contract_copy(raw, "chicago_crime", "unpl-aced", placed=False))
    )
    (contract,) = load_contracts(tmp_path)[0]
    (tmp_path / "chicago_crime.yaml").write_text("hotspots: [{lat: 41.9, lon: -87.7}]\n")
    with pytest.raises(ProfileError, match="names no latitude/longitude"):
        sample_profile(contract, tmp_path)


def test_a_profile_naming_an_unknown_column_is_refused(tmp_path: Path) -> None:
    contract = load_contract(CONTRACTS_DIR / "seattle_crime.yaml")
    (tmp_path / "seattle_crime.yaml").write_text("columns:\n  no_such_column: {pattern: '##'}\n")
    with pytest.raises(ProfileError, match="no_such_column"):
        sample_profile(contract, tmp_path)
