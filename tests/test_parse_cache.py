"""The parse cache of dags/: what a parse reads instead of validating every contract again.

It must give what validating gives, and never hide a change: a cache that is stale, corrupt
or cannot be written only means validating afresh, and a broken contract is still reported.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from citypulse.contracts import contract as contracts_module
from citypulse.contracts.contract import load_contracts
from citypulse.dags import specs as dag_specs
from citypulse.dags.specs import CityDagSpec, city_dag_specs

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "include" / "contracts"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the real contracts that a test may edit."""
    target = tmp_path / "contracts"
    target.mkdir()
    for source in CONTRACTS.glob("*.yaml"):
        shutil.copy2(source, target / source.name)
    return target


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders `load_contracts` validated (so a test sees a hit from a miss)."""
    seen: list[Path] = []

    def counting(directory: Path = contracts_module.CONTRACTS_DIR) -> Any:
        seen.append(directory)
        return load_contracts(directory)

    monkeypatch.setattr(contracts_module, "load_contracts", counting)
    return seen


def messages(errors: list[Any]) -> list[str]:
    return [str(error) for error in errors]


def test_a_hit_gives_what_validating_gives(
    folder: Path, tmp_path: Path, validations: list[Path]
) -> None:
    cache = tmp_path / "cache" / "dags.json"
    fresh, fresh_errors = city_dag_specs(folder, cache)
    cached, cached_errors = city_dag_specs(folder, cache)
    assert validations == [folder]  # the second call read the cache
    assert cached == fresh and cached_errors == fresh_errors == []
    expected = [CityDagSpec.of(c) for c in load_contracts(folder)[0]]
    assert cached == expected
    assert [type(s.start_date).__name__ for s in cached] == ["date"] * len(cached)


def test_editing_a_contract_invalidates_it_even_with_the_same_size_and_mtime(
    folder: Path, tmp_path: Path, validations: list[Path]
) -> None:
    cache = tmp_path / "dags.json"
    city_dag_specs(folder, cache)
    path = folder / "nyc_311.yaml"
    before = path.stat()
    text = path.read_text()
    edited = text.replace("owner: citypulse", "owner: cityrelax", 1)
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    specs, _ = city_dag_specs(folder, cache)
    assert len(validations) == 2
    assert next(s for s in specs if s.dag_id == "nyc_311").owner == "cityrelax"


def test_adding_or_removing_a_contract_invalidates_the_cache(
    folder: Path, tmp_path: Path, validations: list[Path]
) -> None:
    cache = tmp_path / "dags.json"
    assert len(city_dag_specs(folder, cache)[0]) == 4
    (folder / "seattle_crime.yaml").unlink()
    assert "seattle_crime" not in {s.dag_id for s in city_dag_specs(folder, cache)[0]}
    shutil.copy(CONTRACTS / "seattle_crime.yaml", folder / "seattle_crime.yaml")
    assert len(city_dag_specs(folder, cache)[0]) == 4
    assert len(validations) == 3


def test_changing_the_code_that_validates_invalidates_the_cache(
    folder: Path, tmp_path: Path, validations: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "contracts.py"
    code.write_text("# version 1\n")
    monkeypatch.setattr(dag_specs, "_CACHE_CODE", (code,))
    cache = tmp_path / "dags.json"
    city_dag_specs(folder, cache)
    city_dag_specs(folder, cache)
    code.write_text("# version 2\n")
    city_dag_specs(folder, cache)
    assert len(validations) == 2


def test_the_cache_key_reads_the_code_that_validates_contracts() -> None:
    """Editing the contract model (say, a field becomes optional) must invalidate the cache:
    every file the key names exists, the contract model among them."""
    assert all(path.is_file() for path in dag_specs._CACHE_CODE), dag_specs._CACHE_CODE
    assert Path(contracts_module.__file__).resolve() in dag_specs._CACHE_CODE


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json at all",
        b'{"key": "',
        b"[]",
        b'{"key": "KEY", "specs": [{"dag_id": "x"}], "errors": []}',
        b'{"key": "KEY", "specs": [], "errors": 7}',
    ],
)
def test_a_corrupt_cache_is_ignored_and_replaced(
    folder: Path, tmp_path: Path, validations: list[Path], content: bytes
) -> None:
    cache = tmp_path / "dags.json"
    key = dag_specs._cache_key(folder)
    cache.write_bytes(content.replace(b"KEY", key.encode()))
    specs, errors = city_dag_specs(folder, cache)
    assert len(specs) == 4 and errors == []
    assert json.loads(cache.read_text())["key"] == key  # rewritten whole
    city_dag_specs(folder, cache)
    assert len(validations) == 1


def test_an_unwritable_cache_only_costs_validation(
    folder: Path, tmp_path: Path, validations: list[Path]
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    cache = blocker / "cache" / "dags.json"
    for _ in range(2):
        specs, errors = city_dag_specs(folder, cache)
        assert len(specs) == 4 and errors == []
    assert len(validations) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contracts", "not_a_dir"]


def test_a_broken_contract_is_reported_from_the_cache_too(
    folder: Path, tmp_path: Path, validations: list[Path]
) -> None:
    cache = tmp_path / "dags.json"
    broken = folder / "seattle_crime.yaml"
    broken.write_text(
        broken.read_text().replace("timezone: America/Los_Angeles", "timezone: Mars/Olympus")
    )
    (folder / "zz_copy.yaml").write_text((folder / "nyc_311.yaml").read_text())
    results = [city_dag_specs(folder, cache) for _ in range(2)]
    assert len(validations) == 1
    assert results[0][0] == results[1][0]
    assert messages(results[0][1]) == messages(results[1][1])
    for specs, errors in results:
        assert {s.dag_id for s in specs} == {"chicago_crime", "montgomery_traffic"}
        text = "\n".join(messages(errors))
        assert "seattle_crime.yaml" in text and "field 'timezone'" in text
        assert "Mars/Olympus" in text
        assert "each claims dag_id 'nyc_311'" in text
    assert messages(results[1][1]) == messages(load_contracts(folder)[1])
    broken.write_text((CONTRACTS / "seattle_crime.yaml").read_text())
    specs, errors = city_dag_specs(folder, cache)
    assert "seattle_crime" in {s.dag_id for s in specs}
    assert all("seattle_crime.yaml" not in m for m in messages(errors))


def test_no_cache_file_means_no_cache(folder: Path, validations: list[Path]) -> None:
    city_dag_specs(folder, None)
    city_dag_specs(folder, None)
    assert len(validations) == 2
