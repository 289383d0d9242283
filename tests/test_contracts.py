"""Contracts: typed, validated, and safe before any name reaches SQL or SoQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from citypulse.contracts.contract import load_contract, load_contracts
from citypulse.exceptions import ContractError

ROOT = Path(__file__).resolve().parents[1]
NYC = ROOT / "include" / "contracts" / "nyc_311.yaml"


def write_variant(tmp_path: Path, change: Any) -> Path:
    raw = yaml.safe_load(NYC.read_text())
    change(raw)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_four_contracts_load_in_a_stable_order(contracts: list[Any]) -> None:
    assert [c.dag_id for c in contracts] == [
        "chicago_crime",
        "montgomery_traffic",
        "nyc_311",
        "seattle_crime",
    ]
    montgomery = contracts[1]
    assert montgomery.key_column.wire_name == ":id" and montgomery.system_fields


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(table="nyc; DROP TABLE x"), "table"),
        (lambda r: r["columns"][0].update(name="Unique Key"), "columns[0] (Unique Key).name"),
        (lambda r: r.update(key="missing_column"), "(top level)"),
        (lambda r: r.update(timezone="Nowhere/City"), "timezone"),
        (lambda r: r.update(dataset_id="erm2-nwe9' OR 1=1"), "dataset_id"),
        (lambda r: r["bbox"].update(min_lat=41.0), "bbox"),
        (lambda r: r.update(schedule="@daily; rm -rf"), "schedule"),
        (lambda r: r.update(surprise=1), "surprise"),
        (lambda r: r["columns"].append({"name": "event_time"}), "(top level)"),
        (lambda r: r["dashboard"][0].update(view="no_such_view"), "(top level)"),
        (lambda r: r["dashboard"][0].update(kind="pie"), "dashboard[0].kind"),
        (lambda r: r["dashboard"][1].pop("series"), "dashboard[1]"),
        (lambda r: r.update(model={"publication_lag_days": -1}), "model.publication_lag_days"),
        (lambda r: r.update(model={"lag": 7}), "model.lag"),
    ],
)
def test_invalid_contracts_name_the_field(tmp_path: Path, change: Any, field: str) -> None:
    path = write_variant(tmp_path, change)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"field '{field}'" in message


def test_a_duplicate_dag_id_is_an_error_for_both_files(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(NYC.read_text())
    loaded, errors = load_contracts(tmp_path)
    assert loaded == []
    (error,) = errors
    assert "a.yaml and" in str(error) and "b.yaml: each claims dag_id 'nyc_311', table" in str(
        error
    )


def test_a_chart_names_the_view_file_it_lacks(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda r: r["dashboard"][0].update(view="no_such_view"))
    with pytest.raises(ContractError, match=r"views/nyc_311/no_such_view\.sql"):
        load_contract(path)


@pytest.mark.parametrize("api", ["soda2", "soda3", "auto"])
def test_a_contract_may_choose_its_socrata_api(tmp_path: Path, api: str) -> None:
    assert load_contract(write_variant(tmp_path, lambda r: r.update(api=api))).api == api


def test_the_publication_lag_is_the_contracts_and_zero_by_default(
    tmp_path: Path, contracts: list[Any]
) -> None:
    lags = {c.dag_id: c.model.publication_lag_days for c in contracts}
    assert lags == {"chicago_crime": 7, "montgomery_traffic": 0, "nyc_311": 0, "seattle_crime": 0}
    late = write_variant(tmp_path, lambda r: r.update(model={"publication_lag_days": 3}))
    assert load_contract(late).model.publication_lag_days == 3


def test_an_unknown_socrata_api_names_the_field(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda r: r.update(api="soda4"))
    with pytest.raises(ContractError, match="field 'api'"):
        load_contract(path)


def without_place(raw: dict[str, Any]) -> None:
    """The NYC contract as a dataset without a place: no coordinates, bbox or incidents."""
    for key in ("latitude", "longitude", "bbox", "incidents"):
        raw.pop(key)
    raw["columns"] = [c for c in raw["columns"] if c["name"] not in ("latitude", "longitude")]


def test_a_dataset_without_a_place_is_a_valid_contract(tmp_path: Path) -> None:
    contract = load_contract(write_variant(tmp_path, without_place))
    assert (contract.latitude, contract.longitude, contract.bbox, contract.incidents) == (
        None,
        None,
        None,
        None,
    )
    assert not contract.mapped and not contract.modelled


def test_a_mapped_dataset_need_not_feed_incidents(tmp_path: Path) -> None:
    contract = load_contract(write_variant(tmp_path, lambda r: r.pop("incidents")))
    assert contract.mapped and not contract.modelled


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("longitude"), "latitude, bbox given without longitude"),
        (lambda r: r.pop("bbox"), "latitude, longitude given without bbox"),
        (
            lambda r: [r.pop(k) for k in ("latitude", "longitude", "incidents")],
            "bbox given without latitude, longitude",
        ),
        (
            lambda r: [r.pop(k) for k in ("latitude", "longitude", "bbox")],
            "incidents needs latitude, longitude and bbox",
        ),
    ],
)
def test_a_partial_place_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        load_contract(write_variant(tmp_path, change))
