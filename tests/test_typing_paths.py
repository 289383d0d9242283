"""The two ways the validate task types an extract must agree, value for value.

`type_extract` reads the run's file with Arrow and types each column in C++ when the file
holds what the API sends (every value a string); anything else goes record by record through
`type_records`. Both must give the same typed values, the same reasons for the same rows,
the same unknown fields and watermark, and quote the same raw records for rejects. The
accepted rows they write must reach PostgreSQL unchanged through COPY.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import realdata_adapters as adapters
from citypulse.contracts.contract import Contract
from citypulse.pipeline.run_files import key_range, read_wire_table, write_accepted
from citypulse.pipeline.validate.typing_rules import (
    TypedBatch,
    type_extract,
    type_records,
    type_table,
)
from citypulse_dev.generator import generate_day, write_ndjson
from conftest import query
from test_realdata import CASES, Case

DAY = date(2025, 10, 13)
# Wire values the Arrow patterns refuse or that sit on their edges, per column kind: each
# must come out exactly as the pandas path types (or rejects) it.
EDGE_VALUES: dict[str, list[Any]] = {
    "bigint": ["N/A", "1e3", " 5", "+5", "-0", "007", "0.5", "12345678901234567", "", "٣"],
    "integer": ["3000000000", "-2147483647", "2147483648", "1.0", "1,000", "0x10", "-"],
    "double precision": ["1e3", "-74.000000000000001", ".5", "5.", "NaN", "inf", "1,5", "-0"],
    "timestamp": [
        "2025-10-13T25:00:00.000",
        "2025-02-30T00:00:00",
        "2025-10-13T01:02:03Z",
        "2025-10-13T01:02:03.1234567",
        "2025-10-13 01:02:03",
        "20251013",
        "2025-10-13",
        "yesterday",
    ],
    "timestamptz": [
        "2025-10-13T01:02:03",
        "2025-10-13T01:02:03+05:30",
        "2025-10-13T01:02:03.000-04:00",
        "2025-10-13T01:02:03+0530",
        "never",
    ],
    "boolean": ["TRUE", "yes", "1", "maybe", ""],
    "text": ["", 'say "hi", then\nleave', "lone\rcarriage", "\\N", "naïve ☃", "a,b"],
}


def _normalised(batch: TypedBatch) -> dict[str, list[Any]]:
    frame = batch.frame
    return {
        name: [None if _missing(v) else v for v in frame[name].astype(object).tolist()]
        for name in frame.columns
    }


def _missing(value: Any) -> bool:
    try:
        return bool(value != value) or value is None  # NaN, NaT, pd.NA, None
    except TypeError:  # pd.NA in a boolean context
        return True


def assert_same(contract: Contract, fast: TypedBatch, slow: TypedBatch) -> None:
    assert list(fast.frame.columns) == list(slow.frame.columns)
    for column in contract.columns:
        if column.type != "text":  # text: Arrow-backed `str` against object, same values
            assert fast.frame[column.name].dtype == slow.frame[column.name].dtype, column.name
    fast_values, slow_values = _normalised(fast), _normalised(slow)
    for name in slow_values:
        assert fast_values[name] == slow_values[name], name
    assert fast.reasons == slow.reasons
    assert fast.unknown_fields == slow.unknown_fields
    assert fast.absent_required == slow.absent_required
    rejected = [int(i) for i in slow.rejected_mask.nonzero()[0]]
    assert fast.raw_records(rejected) == slow.raw_records(rejected)


def both_paths(
    contract: Contract, records: list[dict[str, Any]], path: Path, window_rows: int | None = None
) -> tuple[TypedBatch, TypedBatch]:
    write_ndjson(records, path)
    table = read_wire_table(path, contract)
    assert table is not None, "Arrow refused a file of wire strings"
    fast = type_table(contract, table, window_rows)
    assert fast is not None
    fast.sources, fast.source_rows = [path], [table.num_rows]
    slow = type_records(contract, json_copy(records), window_rows)
    return fast, slow


def json_copy(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(r)) for r in records]


def with_edges(
    contract: Contract, records: list[dict[str, Any]], seed: int
) -> list[dict[str, Any]]:
    """Records with each column's edge values planted in rows of their own."""
    rng = random.Random(seed)
    edited = json_copy(records)
    key = contract.key_column
    for column in contract.columns:
        if column.name in (contract.key, contract.event_time):
            continue  # a broken key or event time is another test's subject
        values = [*EDGE_VALUES.get(column.type, []), *column.null_values]
        if column.type == "boolean":
            values += [*column.true_values, *column.false_values]
            if any(isinstance(r.get(column.wire_name), bool) for r in records):
                values = [True, False, None]  # JSON booleans: text beside them is refused
        for value in values:
            record = edited[rng.randrange(len(edited))]
            if record.get(key.wire_name) is not None:
                record[column.wire_name] = value
    return edited


def test_arrow_path_types_generated_days_like_the_record_path(
    contracts: list[Contract], tmp_path: Path
) -> None:
    for seed, contract in enumerate(contracts):
        day = generate_day(contract, DAY, seed=seed, records=3000)
        assert day.malformed, "the generator planted no malformed rows"
        records = with_edges(contract, day.records, seed)
        records[5]["an_unknown_field"] = "x"
        fast, slow = both_paths(contract, records, tmp_path / f"{contract.dag_id}.ndjson", 2900)
        assert slow.rejected_mask.any()
        assert_same(contract, fast, slow)


@pytest.mark.realdata
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_arrow_path_types_real_extracts_like_the_record_path(
    realdata: Path, contracts: list[Contract], tmp_path: Path, case: Case
) -> None:
    contract = next(c for c in contracts if c.dag_id == case.dag_id)
    records = [dict(r) for r in adapters.adapt(realdata, case.file)]
    if case.fill is not None:
        records = [dict(r) for r in case.fill(records)]
    path = tmp_path / "real.ndjson"
    if case.absent:  # drift: only the records can say a field is absent, not just null
        write_ndjson(records, path)
        assert type_table(contract, read_wire_table(path, contract), None) is None
        assert type_extract(contract, path).absent_required == list(case.absent)
        return
    fast, slow = both_paths(contract, records, path)
    assert_same(contract, fast, slow)


def test_other_json_types_fall_back_to_the_record_path(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = json_copy(generate_day(contract, DAY, seed=3, records=200).records)
    records[7]["latitude"] = 40.7  # a JSON number where the API sends a string
    records[9]["agency"] = {"nested": True}
    path = tmp_path / "mixed.ndjson"
    write_ndjson(records, path)
    assert read_wire_table(path, contract) is None
    batch = type_extract(contract, path)
    assert batch.records is not None  # typed record by record
    expected = type_records(contract, json_copy(records))
    assert _normalised(batch) == _normalised(expected)
    assert batch.reasons == expected.reasons


def test_a_required_field_absent_from_every_record_is_drift_not_nulls(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = json_copy(generate_day(contract, DAY, seed=4, records=100).records)
    for record in records:
        record.pop("agency", None)
    path = tmp_path / "drift.ndjson"
    write_ndjson(records, path)
    batch = type_extract(contract, path)
    assert batch.absent_required == ["agency"]


def test_an_empty_extract_types_to_an_empty_batch(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = contracts[0]
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    batch = type_extract(contract, path)
    assert len(batch.frame) == 0 and batch.reasons == []


def test_accepted_rows_reach_postgres_unchanged(
    contracts: list[Contract], tmp_path: Path, fresh_warehouse: str
) -> None:
    """Text with quotes, separators, line breaks, a lone CR, "\\N" and "" stays text; NULL
    stays NULL; numbers, booleans and timestamps keep their values, through both paths."""
    import psycopg2

    from citypulse.pipeline.load.batch import upsert_accepted
    from citypulse.pipeline.run_files import stage_columns
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = json_copy(generate_day(contract, DAY, seed=6, records=300).records)
    texts = [c for c in contract.columns if c.type == "text" and not c.values and not c.required]
    for i, value in enumerate(EDGE_VALUES["text"]):
        records[i][texts[0].wire_name] = value
    records[10][texts[1].wire_name] = None
    for i, record in enumerate(records):  # Socrata's change time, with its UTC offset
        record[":updated_at"] = f"2025-10-14T05:{i % 60:02d}:01.{i:03d}Z"
    fast, slow = both_paths(contract, records, tmp_path / "in.ndjson")
    columns = stage_columns(contract)
    table = f"citypulse.{contract.table}"
    for label, batch in (("fast", fast), ("slow", slow)):
        ok = ~batch.rejected_mask
        path = tmp_path / f"{label}.csv"
        written = write_accepted(batch.frame[ok], contract, path, f"run_{label}")
        # The fast batch is COPYed straight in, the slow one goes through staging.
        bounds = key_range(batch.frame[ok], contract) if label == "fast" else None
        with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
            ensure_schema(cur)
            ensure_table(cur, contract)
            cur.execute(f"TRUNCATE {table}")
            cur.execute("SET TIME ZONE 'America/New_York'")  # not the server's default
            inserted, _ = upsert_accepted(cur, contract, path, bounds, run_id=f"run_{label}")
            cur.execute("SELECT to_regclass('pg_temp.stage') IS NOT NULL")
            assert cur.fetchone()[0] is (bounds is None)
        rows = query(fresh_warehouse, f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1")
        assert len(rows) == written == inserted == int(ok.sum())
        frame = batch.frame[ok].sort_values(contract.key)
        expected = _normalised(TypedBatch(frame, [], set(), []))
        integers = {c.name for c in contract.columns if c.type in ("bigint", "integer")}
        stamps = {c.name for c in contract.columns if c.type == "timestamp"}
        zoned = {c.name for c in contract.columns if c.type == "timestamptz"}
        assert zoned
        for j, name in enumerate(columns):
            want = expected[name]
            if name in integers:
                want = [None if v is None else int(v) for v in want]
            if name in stamps | {"event_time"}:
                want = [None if v is None else v.to_pydatetime() for v in want]
            if name in zoned:  # typed as UTC wall time; stored as that instant
                want = [None if v is None else v.to_pydatetime().replace(tzinfo=UTC) for v in want]
            assert [row[j] for row in rows] == want, (label, name)
        lineage = query(
            fresh_warehouse,
            f"SELECT count(*) FROM {table} WHERE cp_run_id <> 'run_{label}' "
            f"OR event_time_utc IS DISTINCT FROM event_time AT TIME ZONE '{contract.timezone}'",
        )
        assert lineage == [(0,)]
        stored = {row[0] for row in query(fresh_warehouse, f"SELECT {texts[0].name} FROM {table}")}
        assert set(EDGE_VALUES["text"]) <= stored
        nulls = query(
            fresh_warehouse, f"SELECT count(*) FROM {table} WHERE {texts[1].name} IS NULL"
        )
        assert nulls[0][0] >= 1


def test_odd_json_values_are_rejected_with_a_reason_not_a_crash(
    contracts: list[Contract], tmp_path: Path
) -> None:
    """Values the portals do not send but a broken export might: each row is rejected with
    a reason naming its column, and the other rows still type."""
    contract = next(c for c in contracts if c.dag_id == "chicago_crime")
    records = json_copy(generate_day(contract, DAY, seed=8, records=60).records)
    stamp = next(c for c in contract.columns if c.type == "timestamp" and not c.required)
    flag = next(c for c in contract.columns if c.type == "boolean")
    odd = {
        10: (flag.wire_name, {"checked": True}),
        11: (flag.wire_name, [True]),
        12: (stamp.wire_name, "99999-01-01T00:00:00"),
        13: (stamp.wire_name, {"when": "today"}),
    }
    for i, (field, value) in odd.items():
        records[i][field] = value
    path = tmp_path / "odd.ndjson"
    write_ndjson(records, path)
    batch = type_extract(contract, path)
    for i, (field, _) in odd.items():
        name = next(c.name for c in contract.columns if c.wire_name == field)
        assert any(r.startswith(f"{name}:") for r in batch.reasons[i]), (i, batch.reasons[i])
    assert batch.frame[contract.key].notna().all()


def test_offsets_mixed_in_one_local_time_column_are_read_as_the_citys_local_times(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    column = next(c for c in contract.columns if c.type == "timestamp" and not c.required)
    records = json_copy(generate_day(contract, DAY, seed=9, records=20).records)
    for record in records:
        record.pop(column.wire_name, None)
    records[0][column.wire_name] = "2025-10-13T12:00:00.000"
    records[1][column.wire_name] = "2025-10-13T12:00:00.000-04:00"
    records[2][column.wire_name] = "2025-10-13T12:00:00.000+05:30"
    records[3][column.wire_name] = "2025-10-13T12:00:00Z"
    fast, slow = both_paths(contract, records, tmp_path / "offsets.ndjson")
    assert_same(contract, fast, slow)
    stamps = [str(v) for v in fast.frame[column.name][:4]]
    assert stamps == [  # New York on 2025-10-13 is at -04:00
        "2025-10-13 12:00:00",
        "2025-10-13 12:00:00",
        "2025-10-13 02:30:00",
        "2025-10-13 08:00:00",
    ]


def test_rejected_rows_quote_their_own_records_when_the_file_has_blank_lines(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = json_copy(generate_day(contract, DAY, seed=10, records=50).records)
    number = next(c for c in contract.columns if c.type == "integer")
    for i in (3, 17, 49):
        records[i][number.wire_name] = f"bad-{i}"
    path = tmp_path / "blank.ndjson"
    lines = [json.dumps(r) for r in records]
    path.write_text("\n\n".join(lines[:20]) + "\n   \n" + "\n".join(lines[20:]) + "\n\n")
    batch = type_extract(contract, path)
    assert batch.records is None  # the Arrow path, which quotes records from the file
    rejected = [int(i) for i in batch.rejected_mask.nonzero()[0]]
    assert {3, 17, 49} <= set(rejected)
    assert batch.raw_records(rejected) == [records[i] for i in rejected]


def _planted(
    contract: Contract, column: str, values: list[Any], seed: int, n: int = 40
) -> list[dict[str, Any]]:
    """Generated records with `values` planted in one column, one value a row from row 1."""
    wire = next(c.wire_name for c in contract.columns if c.name == column)
    records = json_copy(generate_day(contract, DAY, seed=seed, records=n).records)
    for i, value in enumerate(values, start=1):
        records[i][wire] = value
    return records


def test_offsets_pandas_reads_loosely_beside_plain_values_agree_and_do_not_crash(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    values = [
        "2025-10-13T12:00:00",
        "2025-10-13T01:02:03+5:30",
        "2025-10-13T01:02:03-0400 ",
        "2025-10-13 01:02:03",
        "2025-10-13T01:02:03+01",
    ]
    records = _planted(contract, "closed_date", values, seed=11)
    fast, slow = both_paths(contract, records, tmp_path / "loose.ndjson")
    assert_same(contract, fast, slow)


def test_a_value_finer_than_microseconds_does_not_change_its_neighbours(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    values = [
        "2025-10-13T12:00:00.1234567",
        "0500-10-13T12:00:00",
        "2300-01-01T00:00:00",
        "1200-01-01T00:00:00.000Z",
        "2025-10-13T12:00:00.123456789Z",
        "2025-10-13T12:00:00+01:00",
    ]
    records = _planted(contract, "closed_date", values, seed=12)
    fast, slow = both_paths(contract, records, tmp_path / "fine.ndjson")
    assert_same(contract, fast, slow)
    stamps = [str(v) for v in fast.frame["closed_date"][1:7]]
    # closed_date is New York local time: a value with an offset is that instant there.
    assert stamps == [
        "2025-10-13 12:00:00.123457",  # rounded to microseconds, as PostgreSQL rounds
        "0500-10-13 12:00:00",
        "2300-01-01 00:00:00",
        "1199-12-31 19:03:58",  # New York's local mean time then: -4:56:02
        "2025-10-13 08:00:00.123457",
        "2025-10-13 07:00:00",
    ]
    assert not any("closed_date" in r for rows in fast.reasons[1:7] for r in rows)


def test_years_postgresql_cannot_store_are_rejected_rows_not_a_failed_copy(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    values = ["0000-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00"]
    records = _planted(contract, "closed_date", values, seed=13)
    fast, slow = both_paths(contract, records, tmp_path / "years.ndjson")
    assert_same(contract, fast, slow)
    assert all("not a timestamp" in " ".join(fast.reasons[i]) for i in (1, 2))
    assert not any("closed_date" in r for r in fast.reasons[3])
    assert str(fast.frame["closed_date"][3]) == "0001-01-01 00:00:00"


def test_integers_beyond_two_to_the_53_keep_every_digit(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    values = ["12345678901234567", "N/A", "9223372036854775807", "9223372036854775808", "+5"]
    records = _planted(contract, "unique_key", values, seed=14)
    fast, slow = both_paths(contract, records, tmp_path / "big.ndjson")
    assert_same(contract, fast, slow)
    keys = fast.frame["unique_key"]
    assert (keys[1], keys[3], keys[5]) == (12345678901234567, 9223372036854775807, 5)
    assert "is not a valid bigint" in " ".join(fast.reasons[4])
    assert "is not a valid bigint" in " ".join(fast.reasons[2])


def test_a_nul_character_rejects_its_row_and_the_reject_is_quarantined(
    contracts: list[Contract], tmp_path: Path, fresh_warehouse: str
) -> None:
    import psycopg2

    from citypulse.pipeline.load.batch import quarantine_rejects
    from citypulse.pipeline.run_files import write_rejects
    from citypulse.pipeline.windows import window_for_dates
    from citypulse.warehouse.tables import ensure_schema

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = _planted(contract, "descriptor", ["before\x00after"], seed=15)
    fast, slow = both_paths(contract, records, tmp_path / "nul.ndjson")
    assert_same(contract, fast, slow)
    assert any("NUL character" in r for r in fast.reasons[1])
    rejected = [int(i) for i in fast.rejected_mask.nonzero()[0]]
    path = tmp_path / "rejects.ndjson"
    write_rejects(
        (
            {"record": r, "reason": "; ".join(fast.reasons[i]), "key": r.get("unique_key")}
            for i, r in zip(rejected, fast.raw_records(rejected), strict=True)
        ),
        path,
    )
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        ensure_schema(cur)
        assert quarantine_rejects(cur, contract, path, "run_nul", window) == len(rejected)
    stored = query(
        fresh_warehouse,
        "SELECT record ->> 'descriptor' FROM citypulse.rejects WHERE reason LIKE '%NUL%'",
    )
    assert stored == [("before\\u0000after",)]


def test_null_tokens_on_a_boolean_field_sent_as_json_booleans(
    contracts: list[Contract], tmp_path: Path
) -> None:
    chicago = next(c for c in contracts if c.dag_id == "chicago_crime")
    columns = [
        c.model_copy(update={"null_values": ["UNKNOWN"]}) if c.type == "boolean" else c
        for c in chicago.columns
    ]
    contract = chicago.model_copy(update={"columns": columns})
    records = json_copy(generate_day(contract, DAY, seed=16, records=40).records)
    fast, slow = both_paths(contract, records, tmp_path / "flags.ndjson")
    assert_same(contract, fast, slow)


def test_an_optional_boolean_field_no_record_holds_stays_on_the_arrow_path(
    contracts: list[Contract], tmp_path: Path
) -> None:
    contract = next(c for c in contracts if c.dag_id == "chicago_crime")
    flag = next(c for c in contract.columns if c.type == "boolean" and not c.required)
    records = json_copy(generate_day(contract, DAY, seed=17, records=40).records)
    for record in records:
        record.pop(flag.wire_name, None)
    fast, slow = both_paths(contract, records, tmp_path / "no_flag.ndjson")
    assert_same(contract, fast, slow)
    assert type_extract(contract, tmp_path / "no_flag.ndjson").records is None
    assert fast.frame[flag.name].isna().all()


def _dst_minutes(timezone: str) -> list[datetime]:
    """Local wall times every 10 minutes through each DST change of 2024-2026 (the hour
    that does not exist and the hour that happens twice)."""
    zone = ZoneInfo(timezone)
    stamps = []
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    while moment.year < 2027:
        nxt = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            local = nxt.astimezone(zone).replace(tzinfo=None)
            stamps += [local + timedelta(minutes=m) for m in range(-120, 130, 10)]
        moment = nxt
    return stamps


@pytest.mark.parametrize("straight", [True, False], ids=["copied_in", "staged"])
def test_event_time_utc_is_postgres_own_conversion_across_dst(
    contracts: list[Contract], tmp_path: Path, fresh_warehouse: str, straight: bool
) -> None:
    """Story: an analyst compares cities in UTC. Local times in the hour DST skips or
    repeats get the UTC instant `event_time AT TIME ZONE` gives, on both load paths."""
    import pandas as pd
    import psycopg2

    from citypulse.pipeline.load.batch import upsert_accepted
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    for contract in contracts:
        stamps = _dst_minutes(contract.timezone)
        assert len(stamps) >= 150, contract.timezone
        records = json_copy(generate_day(contract, DAY, seed=17, records=len(stamps) + 40).records)
        batch = type_records(contract, records)
        frame = batch.frame[~batch.rejected_mask].iloc[: len(stamps)].copy()
        frame["event_time"] = pd.Series(stamps[: len(frame)], index=frame.index).astype(
            frame["event_time"].dtype
        )
        path = tmp_path / f"{contract.dag_id}.csv"
        written = write_accepted(frame, contract, path, "run_dst")
        bounds = key_range(frame, contract) if straight else None
        with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
            ensure_schema(cur)
            ensure_table(cur, contract)
            assert upsert_accepted(cur, contract, path, bounds, run_id="run_dst") == (written, 0)
        table = f"citypulse.{contract.table}"
        assert query(
            fresh_warehouse,
            f"SELECT count(*), count(*) FILTER (WHERE event_time_utc IS DISTINCT FROM "
            f"event_time AT TIME ZONE '{contract.timezone}') FROM {table}",
        ) == [(written, 0)]


def test_the_documented_dst_rule_holds(
    contracts: list[Contract], tmp_path: Path, fresh_warehouse: str
) -> None:
    """README's rule: a wall time DST skips or repeats is read at the offset of standard
    time: in New York 2025-03-09 02:30 (skipped) is 07:30Z, 2025-11-02 01:30 (twice) 06:30Z."""
    import pandas as pd
    import psycopg2

    from citypulse.pipeline.load.batch import upsert_accepted
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    cases = {datetime(2025, 3, 9, 2, 30): "07:30", datetime(2025, 11, 2, 1, 30): "06:30"}
    records = json_copy(generate_day(contract, DAY, seed=19, records=40).records)
    batch = type_records(contract, records)
    frame = batch.frame[~batch.rejected_mask].iloc[: len(cases)].copy()
    frame["event_time"] = pd.Series(list(cases), index=frame.index).astype(
        frame["event_time"].dtype
    )
    path = tmp_path / "dst.csv"
    write_accepted(frame, contract, path, "run_dst_rule")
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
        upsert_accepted(cur, contract, path, None, run_id="run_dst_rule")
    found = query(
        fresh_warehouse,
        "SELECT event_time, to_char(event_time_utc AT TIME ZONE 'UTC', 'HH24:MI') "
        f"FROM citypulse.{contract.table} ORDER BY event_time",
    )
    assert dict(found) == cases


def test_a_batch_whose_key_is_stored_falls_back_to_the_upsert(
    contracts: list[Contract], tmp_path: Path, fresh_warehouse: str
) -> None:
    """A key range that looked free but holds a stored key (text keys compare in the
    database's collation) costs a rolled-back COPY, then upserts: nothing doubled, nothing
    lost, the changed row updated."""
    import psycopg2

    from citypulse.pipeline.load.batch import _keys_stored, upsert_accepted
    from citypulse.warehouse.tables import ensure_schema, ensure_table

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = json_copy(generate_day(contract, DAY, seed=18, records=200).records)
    batch = type_records(contract, records)
    frame = batch.frame[~batch.rejected_mask]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_accepted(frame.iloc[:50], contract, first, "run_first")
    changed = frame.iloc[40:].copy()
    changed["descriptor"] = "changed"
    written = write_accepted(changed, contract, second, "run_second")
    free = [-2, -1]  # a range holding no key: the COPY is tried, and clashes
    with psycopg2.connect(fresh_warehouse) as conn, conn.cursor() as cur:
        ensure_schema(cur)
        ensure_table(cur, contract)
        assert upsert_accepted(
            cur, contract, first, key_range(frame.iloc[:50], contract), run_id="run_first"
        ) == (
            50,
            0,
        )
        # Bounds as the database's collation may order text keys: either way round.
        low, high = key_range(frame.iloc[:50], contract)
        assert _keys_stored(cur, contract, [high, low]) and _keys_stored(cur, contract, [low, low])
        assert not _keys_stored(cur, contract, free)
        assert upsert_accepted(cur, contract, second, free, run_id="run_second") == (
            written - 10,
            10,
        )
    assert query(
        fresh_warehouse,
        "SELECT count(*), count(DISTINCT unique_key), "
        "count(*) FILTER (WHERE descriptor = 'changed' AND cp_run_id = 'run_second') "
        "FROM citypulse.nyc_311",
    ) == [(40 + written, 40 + written, written)]


@pytest.mark.parametrize("records_path", [False, True], ids=["arrow", "records"])
def test_an_extract_in_parts_types_as_one_file(
    contracts: list[Any], tmp_path: Path, records_path: bool
) -> None:
    """Extract parts are typed as one batch, whichever path; a reject quotes its own record
    from the part that holds it."""
    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    records = generate_day(contract, DAY, seed=17, records=90).records
    number = next(c.wire_name for c in contract.columns if c.type == "double precision")
    for i in (5, 40, 80):  # a value no path can type: a reject in every part
        records[i] = {**records[i], number: "not a number"}
    if records_path:  # a JSON number where text is expected: Arrow refuses that part
        records[70] = {**records[70], contract.key_column.wire_name: 12345}
    whole = tmp_path / "whole.ndjson"
    write_ndjson(records, whole)
    parts = [tmp_path / f"part-{i}.ndjson" for i in range(3)]
    for i, part in enumerate(parts):
        write_ndjson(records[i * 30 : (i + 1) * 30], part)
    one, many = type_extract(contract, whole, 60), type_extract(contract, parts, 60)
    assert (one.records is None, many.records is None) == (not records_path, not records_path)
    assert _normalised(many) == _normalised(one)
    assert many.reasons == one.reasons
    rejected = [int(i) for i in many.rejected_mask.nonzero()[0]]
    assert {i // 30 for i in rejected} == {0, 1, 2}, "rejects in every part"
    assert many.raw_records(rejected) == [json_copy([records[i]])[0] for i in rejected]
