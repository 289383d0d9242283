"""Typing cannot raise (`citypulse.pipeline.validate.typing_rules`): whatever a portal sends,
each value of each column is typed or its row is rejected with a reason naming the column,
and the batch keeps every row.

A value no column can hold (a 10,000-digit key, a 5,000-digit count) is one bad record to
quarantine, not an exception that blocks the day's good records. A property-based fuzz drives
both typing paths (records, and Arrow over an extract file) with hostile values of every JSON
type in a column of every registered type, so a type added to the registry is fuzzed too.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypulse.contracts.column_types import COLUMN_TYPES, ColumnType, column_type
from citypulse.contracts.contract import Contract
from citypulse.pipeline.validate.typing_rules import TypedBatch
from conftest import ROOT
from helpers import by_id

DAY = date(2025, 10, 13)


def _with_every_type(name: str, folder: Path) -> Contract:
    """A contract plus one column of every registered type, NULL-token `N/A`."""
    from citypulse.contracts.contract import load_contract

    raw = yaml.safe_load((ROOT / "include" / "contracts" / f"{name}.yaml").read_text())
    raw["columns"] += [
        {"name": f"extra_{kind.replace(' ', '_')}", "type": kind, "null_values": ["N/A"]}
        for kind in COLUMN_TYPES
    ]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_contract(path)


class Day(NamedTuple):
    """A contract and a day of its records (named, not shown, when Hypothesis reports)."""

    contract: Contract
    records: list[dict[str, Any]]

    def __repr__(self) -> str:
        return f"Day({self.contract.dag_id})"


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> list[Day]:
    """NYC 311 (a bigint key) and Montgomery (a text key, a split event time), each with a
    column of every registered type, and a day of their records."""
    from citypulse_dev.generator import generate_day

    folder = tmp_path_factory.mktemp("every_type")
    made = []
    for seed, name in enumerate(("nyc_311", "montgomery_traffic")):
        contract = _with_every_type(name, folder)
        assert {c.type for c in contract.columns} == set(COLUMN_TYPES)
        records = generate_day(contract, DAY, seed=seed, records=400).records
        made.append(Day(contract, [json.loads(json.dumps(r)) for r in records]))
    return made


# --- a value out of every range is one quarantined record -----------------------------------


def _good_day(contract: Contract, n: int = 60) -> list[dict[str, Any]]:
    from citypulse.pipeline.validate.typing_rules import type_records
    from citypulse_dev.generator import generate_day

    records = generate_day(contract, DAY, seed=71, records=n * 2).records
    reasons = type_records(contract, records).reasons
    good = [r for r, rejected in zip(records, reasons, strict=True) if not rejected]
    return [json.loads(json.dumps(r)) for r in good[:n]]


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("unique_key", "9" * 10_000, "unique_key: '99999"),
        ("unique_key", "-" + "1" * 10_000, "unique_key: '-1111"),
        ("x_coordinate_state_plane", "7" * 5_000, "x_coordinate_state_plane: '77777"),
        ("x_coordinate_state_plane", 7 * 10**4_999, "x_coordinate_state_plane: <an integer"),
        ("unique_key", "9223372036854775808", "unique_key: '9223372036854775808'"),
        ("x_coordinate_state_plane", "2147483648", "x_coordinate_state_plane: '2147483648'"),
    ],
    ids=["key-10k-digits", "key-negative-10k", "int-5k-digits", "int-5k-json", "bigint+1", "int+1"],
)
def test_an_integer_out_of_its_column_range_is_quarantined_and_the_rest_typed(
    contracts: list[Contract], tmp_path: Path, column: str, value: Any, said: str
) -> None:
    from citypulse.pipeline.run_files import json_line
    from citypulse.pipeline.validate.typing_rules import type_extract, type_records

    contract = by_id(contracts, "nyc_311")
    records = _good_day(contract)
    typed = type_records(contract, records).frame[column].astype(object)
    expected = typed.where(typed.notna(), None).tolist()
    expected[7] = None
    wire = next(c.wire_name for c in contract.columns if c.name == column)
    records[7] = {**records[7], wire: value}
    batches = [type_records(contract, records)]
    if isinstance(value, str):  # Python writes (and reads) no JSON int of 4,300+ digits
        path = tmp_path / "part.ndjson"
        path.write_bytes(b"".join(json_line(r) for r in records))
        batches.append(type_extract(contract, path))
    for batch in batches:
        assert len(batch.frame) == len(records)
        (reason,) = batch.reasons[7]
        assert reason.startswith(said), reason
        kind = column_type(next(c.type for c in contract.columns if c.name == column))
        assert f"is not a valid {kind.name} (beyond ±{kind.limit:,})" in reason
        assert len(reason) < 200
        assert not any(batch.reasons[:7] + batch.reasons[8:])
        typed = batch.frame[column].astype(object)
        assert typed.where(typed.notna(), None).tolist() == expected


def test_a_json_object_in_a_text_column_is_rejected_naming_the_column(
    contracts: list[Contract],
) -> None:
    from citypulse.pipeline.validate.typing_rules import type_records

    contract = by_id(contracts, "nyc_311")
    records = _good_day(contract, 6)
    records[1]["descriptor"] = {"nested": {"deep": [1, 2]}}
    records[2]["descriptor"] = ["a", "list"]
    records[3]["descriptor"] = 12
    records[4]["descriptor"] = True
    batch = type_records(contract, records)
    assert batch.reasons[1] == ["descriptor: a JSON object, not text"]
    assert batch.reasons[2] == ["descriptor: a JSON array, not text"]
    assert batch.reasons[3] == batch.reasons[4] == []  # scalars read as their JSON text
    assert batch.frame["descriptor"].tolist()[1:5] == [None, None, "12", "true"]


# --- the fuzz: no input makes typing raise --------------------------------------------------

_DIGITS = st.text("0123456789", min_size=1, max_size=12)
_DIGIT_STRINGS = st.builds(
    lambda sign, digits, times: sign + digits * times,
    st.sampled_from(["", "-", "+", " ", "0", "-0"]),
    _DIGITS,
    st.integers(1, 2_000),  # up to ~24,000 digits
)
_NUMBER_TEXTS = st.one_of(
    st.sampled_from(
        [
            *("NaN", "nan", "-nan", "inf", "-Infinity", "1e309", "-1e-400", "1e5000", "0x10"),
            *("1_000", "1e18", "9.2e18", ".", "-", "-9223372036854775809", "2147483647.0"),
            *("1E+2", "\u0663", "\uff11\uff12"),  # an Arabic-Indic 3, a full-width 12
            *("9" * 400 + "e-400", "0." + "0" * 5_000 + "1", "1" + "0" * 400 + ".5"),
        ]
    ),
    st.floats().map(repr),
    st.integers().map(str),
    st.decimals(allow_nan=True).map(str),
)
_STAMP_TEXTS = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.builds(
        lambda year, rest: f"{year}{rest}",
        st.integers(-(10**12), 10**12),
        st.sampled_from(
            [
                *("-01-01", "-13-45T99:99:99", "-02-29T00:00:00Z", "-01-01T00:00:00+99:99"),
                *("-1-1", "W01", "-06-01T12:00:00.1234567891234", "-01-01T00:00:00-23:59"),
                *("-01-01T24:00:00", "-12-31T23:59:59.9999995+14:00"),
            ]
        ),
    ),
    st.sampled_from(
        [
            *("0000-00-00", "9999-12-31T23:59:60", "now", "T", "2025-10-13T", "1e10", "  "),
            *("25:99", "99999999999:00", "9" * 30 + ":00", "-00:01", "12:00:00.9999999999"),
            *("P99999999999D", "99999999999999 days", "24:00:00", "1 day", "inf hours"),
            *("nan", "NaT"),
        ]
    ),
)
_KINDS = (
    st.text(st.characters(exclude_categories=()), max_size=40),  # lone surrogates and NULs too
    _DIGIT_STRINGS,
    _NUMBER_TEXTS,
    _STAMP_TEXTS,
    st.sampled_from(["", "N/A", "true", "Yes", "0", "\x00", "\ud800", "a\x00b"]),
    st.floats(),
    st.integers(),
    st.integers(1, 20_000).map(lambda n: -(10**n) if n % 2 else 10**n),
    st.booleans(),
    st.none(),
)
_SCALARS = st.one_of(*_KINDS)
HOSTILE = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# Values of one kind: planted down one column, a column of nothing else (pandas infers
# another dtype for a column of ints alone than beside text).
ALIKE = st.one_of(*(st.lists(kind, min_size=1, max_size=60) for kind in _KINDS))
# Strings only: what the Arrow path reads from an extract file.
HOSTILE_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    _DIGIT_STRINGS,
    _NUMBER_TEXTS,
    _STAMP_TEXTS,
)


def _planted(
    contract: Contract, records: list[dict[str, Any]], values: list[Any], shift: int, down: bool
) -> tuple[list[dict[str, Any]], list[tuple[int, str, Any]]]:
    """The records with value k in row k, in column (k + shift) % columns (or, `down`, all
    in column `shift`: a column of nothing else); and where each value went."""
    n = min(len(values), len(records))
    planted = [dict(r) for r in records[:n]]
    where = []
    for i, value in enumerate(values[:n]):
        column = contract.columns[(shift if down else i + shift) % len(contract.columns)]
        planted[i][column.wire_name] = value
        where.append((i, column.name, value))
    return planted, where


def _assert_typed_or_rejected(
    contract: Contract, batch: TypedBatch, records: list[Any], where: list[tuple[int, str, Any]]
) -> None:
    """Every row kept; each planted value typed to what its column can store, or its row
    rejected with a reason naming the column."""
    import pandas as pd

    assert len(batch.frame) == len(batch.reasons) == len(records)
    columns = {c.name: c for c in contract.columns}
    for row, name, value in where:
        column = columns[name]
        typed = batch.frame[name].iloc[row]
        named = [r for r in batch.reasons[row] if r.startswith(f"{name}: ")]
        if value is None or (isinstance(value, str) and value in column.null_values):
            continue
        kind = column_type(column.type)
        _assert_kept_if_valid(kind, value, typed, named)
        if pd.isna(typed):
            assert named, (name, value, batch.reasons[row])
            continue
        if named:
            continue  # typed, but rejected by a check after typing (a long key)
        if kind.family == "integer":
            assert abs(int(typed)) <= (kind.limit or 2**63 - 1), (name, value)
        elif kind.family == "number":
            assert math.isfinite(typed), (name, value)
        elif kind.family == "timestamp":
            assert pd.Timestamp("0001-01-01") <= typed <= pd.Timestamp("9999-12-31 23:59:59.999999")
        elif kind.family == "text":
            assert isinstance(typed, str) and "\x00" not in typed, (name, value)
            typed.encode("utf-8")
        else:
            assert typed in (True, False), (name, value)


def _assert_kept_if_valid(kind: ColumnType, value: Any, typed: Any, named: list[str]) -> None:
    """A value plainly of its column's type is typed as itself."""
    if isinstance(value, bool):
        return
    whole = kind.family == "integer" and isinstance(value, int) and abs(value) <= (kind.limit or 0)
    finite = kind.family == "number" and isinstance(value, float) and math.isfinite(value)
    if whole or finite:
        assert typed == value and not named, (kind.name, value, typed, named)
    elif kind.family == "text" and isinstance(value, str) and value.isprintable():
        assert typed == value, (kind.name, value, typed)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(HOSTILE, min_size=1, max_size=120) | ALIKE,
    shift=st.integers(0, 200),
    down=st.booleans(),
)
def test_no_value_of_any_json_type_makes_typing_raise(
    every_type: list[Day], values: list[Any], shift: int, down: bool
) -> None:
    from citypulse.pipeline.validate.typing_rules import type_records

    for contract, records in every_type:
        planted, where = _planted(contract, records, values, shift, down)
        batch = type_records(contract, planted)
        _assert_typed_or_rejected(contract, batch, planted, where)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(HOSTILE_TEXT, min_size=1, max_size=120),
    shift=st.integers(0, 200),
    down=st.booleans(),
)
def test_no_wire_string_makes_either_typing_path_raise(
    every_type: list[Day],
    tmp_path_factory: pytest.TempPathFactory,
    values: list[str],
    shift: int,
    down: bool,
) -> None:
    from citypulse.pipeline.run_files import json_line
    from citypulse.pipeline.validate.typing_rules import type_extract

    folder = tmp_path_factory.mktemp("wire")
    for contract, records in every_type:
        planted, where = _planted(contract, records, values, shift, down)
        path = folder / f"{contract.dag_id}.ndjson"
        path.write_bytes(b"".join(json_line(r) for r in planted))
        batch = type_extract(contract, path)
        _assert_typed_or_rejected(contract, batch, planted, where)


# --- should typing raise all the same, the step fails at once naming dataset and column -----


def test_a_column_typing_cannot_type_fails_the_step_at_once_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A type registered with an Arrow type the Arrow path does not know: typing raises; the
    error names the dataset and the column, and Airflow does not retry it."""
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse.contracts.column_types import DECIMAL_PATTERN, ColumnType
    from citypulse.dags.steps import failing_fast
    from citypulse.exceptions import ValidationFailed
    from citypulse.pipeline.run_files import json_line
    from citypulse.pipeline.validate.typing_rules import type_extract
    from citypulse_dev.generator import generate_day

    unknown = ColumnType("numeric", "number", "number", arrow=(DECIMAL_PATTERN, "decimal128"))
    monkeypatch.setitem(COLUMN_TYPES, "numeric", unknown)
    raw = yaml.safe_load((ROOT / "include" / "contracts" / "nyc_311.yaml").read_text())
    raw["columns"].append({"name": "amount", "type": "numeric"})
    (tmp_path / "nyc_311.yaml").write_text(yaml.safe_dump(raw))
    from citypulse.contracts.contract import load_contract

    contract = load_contract(tmp_path / "nyc_311.yaml")
    records = [{**r, "amount": "12.5"} for r in generate_day(contract, DAY, records=20).records]
    path = tmp_path / "part.ndjson"
    path.write_bytes(b"".join(json_line(r) for r in records))
    with pytest.raises(ValidationFailed) as caught:
        type_extract(contract, path)
    assert str(caught.value).startswith("nyc_311: typing column 'amount' failed: KeyError")
    assert not caught.value.transient
    with pytest.raises(AirflowFailException, match="typing column 'amount'"), failing_fast():
        type_extract(contract, path)
