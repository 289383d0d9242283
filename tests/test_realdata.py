"""The real public extracts in ../shared/realdata parse and validate under the contracts.

Each real file is turned into the wire records the live API would have sent
(tests/realdata_adapters.py says how and why), typed with `type_records`, validated with
`run_suite` over a window spanning the file's documented date range, and gated with `enforce`.
The expected reject counts are exact: every reject is a real defect of the data (or a schema
drift the pipeline must flag), named below. Skips cleanly when the folder is absent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest

import realdata_adapters as adapters
from citypulse.contracts.contract import Contract, load_contracts
from citypulse.exceptions import ValidationFailed
from citypulse.pipeline.validate.suite import ValidationReport, enforce, run_suite
from citypulse.pipeline.validate.typing_rules import TypedBatch, type_records
from citypulse.pipeline.windows import window_for_dates

pytestmark = pytest.mark.realdata

CONTRACTS: dict[str, Contract] = {c.dag_id: c for c in load_contracts()[0]}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

NYC_JSON = "nyc311/lostchemist_nyc_311_data.json"
NYC_CSV = "nyc311/lostchemist_erm2-nwe9.csv"
CHICAGO_DEC01 = "chicago/cbschicago_carjacking-all-latest-raw_2022-12-01.csv"
CHICAGO_DEC31 = "chicago/cbschicago_carjacking-all-latest-raw_2022-12-31.csv"
SEATTLE_OLD = "seattle/myronbanez_SPD_Crime_Data__2008-Present.csv"
SEATTLE_NEW = "seattle/new_schema_example.json"
MONTGOMERY_2016 = "montgomery/nikolausn_Traffic_Violations.csv"
MONTGOMERY_2017 = "montgomery/tolu238_Traffic_Violations.csv"
MONTGOMERY_API = "montgomery/wisundstrom_pre_clean_data_api_subset.csv"


@dataclass(frozen=True)
class Case:
    """One real file (or a documented variant of it) and what validating it must show."""

    id: str
    file: str
    dag_id: str
    rows: int
    days: tuple[str, str] | None  # first and last local day (README ranges); None: no event time
    absent: tuple[str, ...] = ()  # required columns the file cannot carry (schema drift)
    flagged: tuple[tuple[str, int], ...] = ()  # column -> rows with a reason about it
    rejected: int = 0
    unknown: frozenset[str] = frozenset()
    fill: Callable[[list[adapters.WireRecord]], list[adapters.WireRecord]] | None = None


SEATTLE_NO_LOCATION = 747  # old schema wrote "0","0" where it had no location (no block either)

CASES = [
    # `location` (the API's object) is in the contract's ignore_fields: no drift warning.
    Case("nyc-json", NYC_JSON, "nyc_311", 1000, ("2024-05-26", "2024-05-27")),
    Case("nyc-csv-lostchemist", NYC_CSV, "nyc_311", 1000, ("2024-05-26", "2024-05-27")),
    Case("nyc-csv-kyoungb", "nyc311/kyoungb_erm2-nwe9.csv", "nyc_311", 1000,
         ("2025-10-13", "2025-10-14")),
    Case("nyc-csv-mohrum12", "nyc311/mohrum12_erm2-nwe9.csv", "nyc_311", 1000,
         ("2025-10-12", "2025-10-13")),
    Case("chicago-2022-12-01", CHICAGO_DEC01, "chicago_crime", 8054, ("2015-01-01", "2022-12-01")),
    Case("chicago-2022-12-31", CHICAGO_DEC31, "chicago_crime", 8185, ("2015-01-01", "2022-12-31")),
    # The old export lacks the required offense_category: the batch must be flagged as drift.
    Case("seattle-old-as-is", SEATTLE_OLD, "seattle_crime", 21454, ("2008-01-01", "2021-09-21"),
         absent=("offense_category",),
         flagged=(("offense_category", 21454), ("latitude", SEATTLE_NO_LOCATION),
                  ("longitude", SEATTLE_NO_LOCATION)),
         rejected=21454, unknown=frozenset({"offense_end_datetime"})),
    # ...and with a stand-in category, everything else validates but the 0,0 coordinates.
    Case("seattle-old+category", SEATTLE_OLD, "seattle_crime", 21454,
         ("2008-01-01", "2021-09-21"),
         flagged=(("latitude", SEATTLE_NO_LOCATION), ("longitude", SEATTLE_NO_LOCATION)),
         rejected=SEATTLE_NO_LOCATION, unknown=frozenset({"offense_end_datetime"}),
         fill=adapters.with_offense_category),
    Case("seattle-new-schema", SEATTLE_NEW, "seattle_crime", 1, ("2020-01-27", "2020-01-27")),
    # The 2016/2017 exports have no SeqID column: flagged as drift as they are...
    Case("montgomery-2016-as-is", MONTGOMERY_2016, "montgomery_traffic", 4991,
         ("2013-01-05", "2015-06-16"), absent=("seq_id",),
         flagged=(("seq_id", 4991), ("longitude", 12)), rejected=4991),
    # ...and with a stand-in seq_id only real mis-geocoded points (east of the county) fail.
    Case("montgomery-2016+seq_id", MONTGOMERY_2016, "montgomery_traffic", 4991,
         ("2013-01-05", "2015-06-16"), flagged=(("longitude", 12),), rejected=12,
         fill=adapters.with_stop_seq_id),
    Case("montgomery-2017-as-is", MONTGOMERY_2017, "montgomery_traffic", 999,
         ("2012-01-01", "2016-03-11"), absent=("seq_id",),
         flagged=(("seq_id", 999), ("longitude", 2)), rejected=999),
    Case("montgomery-2017+seq_id", MONTGOMERY_2017, "montgomery_traffic", 999,
         ("2012-01-01", "2016-03-11"), flagged=(("longitude", 2),), rejected=2,
         fill=adapters.with_stop_seq_id),
    # 12 $selected API columns: no :id, no event time, no subagency/description.
    Case("montgomery-api-subset", MONTGOMERY_API, "montgomery_traffic", 30000, None,
         absent=("row_id", "date_of_stop", "subagency", "description"),
         flagged=(("row_id", 30000), ("date_of_stop", 30000), ("subagency", 30000),
                  ("description", 30000)),
         rejected=30000),
]  # fmt: skip


@dataclass
class Outcome:
    """What the pipeline made of one case."""

    case: Case
    records: list[adapters.WireRecord]
    batch: TypedBatch
    typing_rejects: int
    report: ValidationReport


_OUTCOMES: dict[str, Outcome] = {}


@cache
def adapted(realdata: Path, name: str) -> list[adapters.WireRecord]:
    """The adapted records of one file, read once per session (treat them as read-only)."""
    return adapters.adapt(realdata, name)


def outcome(realdata: Path, case: Case) -> Outcome:
    """Adapt, type and validate one case (once per session: the table test reuses it)."""
    if case.id not in _OUTCOMES:
        contract = CONTRACTS[case.dag_id]
        records = adapted(realdata, case.file)
        if case.fill is not None:
            records = case.fill(records)
        batch = type_records(contract, records)
        typing_rejects = int(batch.rejected_mask.sum())
        window = window_for_dates(*case.days, contract.timezone) if case.days is not None else None
        report = run_suite(contract, batch, window)
        _OUTCOMES[case.id] = Outcome(case, records, batch, typing_rejects, report)
    return _OUTCOMES[case.id]


def flagged_columns(batch: TypedBatch) -> dict[str, int]:
    """Per column, how many rows carry at least one reason naming it ("col: ...")."""
    counts: Counter[str] = Counter()
    for reasons in batch.reasons:
        counts.update({reason.split(":", 1)[0] for reason in reasons})
    return dict(counts)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real_file_validates_under_its_contract(realdata: Path, case: Case) -> None:
    result = outcome(realdata, case)
    contract, batch, report = CONTRACTS[case.dag_id], result.batch, result.report
    assert len(result.records) == len(batch.frame) == report.extracted == case.rows
    # Every real value parses under the contract's types: rejects come from validation only.
    assert result.typing_rejects == 0, report.top_reasons
    # Each row is accepted or rejected with at least one non-empty reason.
    rejected = batch.rejected_mask
    assert all(reason.strip() for rows in batch.reasons for reason in rows)
    assert int(rejected.sum()) == report.rejected == case.rejected, report.top_reasons
    assert flagged_columns(batch) == dict(case.flagged), report.top_reasons
    assert batch.absent_required == list(case.absent)
    assert batch.unknown_fields == case.unknown
    if case.absent:
        # Schema drift: the batch must not load, and the operator is told which column.
        with pytest.raises(ValidationFailed, match="required column"):
            enforce(contract, batch, report)
    else:
        assert report.rejected_share <= contract.reject_threshold
        enforce(contract, batch, report)
        assert batch.frame["event_time"].notna().all()


def test_seattle_rejects_are_the_old_schemas_missing_locations(realdata: Path) -> None:
    """The 747 Seattle rejects are the old export's "0","0" points, which have no address."""
    result = outcome(realdata, next(c for c in CASES if c.id == "seattle-old+category"))
    rejected = [r for r, bad in zip(result.records, result.batch.rejected_mask, strict=True) if bad]
    assert {(r["latitude"], r["longitude"]) for r in rejected} == {("0", "0")}
    assert not any("block_address" in r for r in rejected)


def test_montgomery_rejects_are_real_geocoding_errors(realdata: Path) -> None:
    """The Montgomery rejects are points east of the county line (-76.67, -76.84) given for
    county roads (Randolph Rd, Georgia Ave): the geocoding is wrong, the bounding box right."""
    for case_id in ("montgomery-2016+seq_id", "montgomery-2017+seq_id"):
        result = outcome(realdata, next(c for c in CASES if c.id == case_id))
        mask = result.batch.rejected_mask
        rejected = [r for r, bad in zip(result.records, mask, strict=True) if bad]
        box = CONTRACTS["montgomery_traffic"].bbox
        assert rejected and all(float(r["longitude"]) > box.max_lon for r in rejected)
        assert all(box.min_lat <= float(r["latitude"]) <= box.max_lat for r in rejected)


def test_nyc_csv_adapter_reproduces_the_api_json(realdata: Path) -> None:
    """The lostchemist CSV and JSON hold the same rows: adapted, they are the same records
    but for what CSV cannot carry (the location object, hidden computed-region keys)."""
    from_json = {
        r["unique_key"]: {k: v for k, v in r.items() if k != "location" and not k.startswith(":")}
        for r in adapted(realdata, NYC_JSON)
    }
    from_csv = {r["unique_key"]: r for r in adapted(realdata, NYC_CSV)}
    assert len(from_json) == 1000
    assert from_csv == from_json


def test_wire_records_have_the_api_shape(realdata: Path) -> None:
    """Every adapted value is a string (no empties), and timestamps are floating ISO."""
    floating = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000")
    for name in adapters.ADAPTERS:
        records = adapted(realdata, name)
        contract = CONTRACTS[_dag_of(name)]
        stamps = [c.wire_name for c in contract.columns if c.type == "timestamp"]
        for record in records:
            for field, value in record.items():
                if name == NYC_JSON and field == "location":
                    assert isinstance(value, dict)  # the API's location object, as sent
                else:
                    assert isinstance(value, str) and value != "", (name, field, value)
            assert all(floating.fullmatch(record[s]) for s in stamps if s in record), name


def _dag_of(name: str) -> str:
    folder = name.split("/", 1)[0]
    return {
        "nyc311": "nyc_311",
        "chicago": "chicago_crime",
        "seattle": "seattle_crime",
        "montgomery": "montgomery_traffic",
    }[folder]


def test_old_exports_drift_exactly_as_documented(realdata: Path) -> None:
    """What the contracts expect but the older exports cannot carry, column by column."""
    seattle = CONTRACTS["seattle_crime"]
    seattle_fields = {k for r in adapted(realdata, SEATTLE_OLD) for k in r}
    assert {c.wire_name for c in seattle.columns} - seattle_fields == {
        "offense_category",  # current NIBRS grouping; required
        "reporting_area",
        "census_block_2020",
        ":updated_at",  # a system field: portal exports never carry it
    }
    assert seattle_fields - {c.wire_name for c in seattle.columns} == {"offense_end_datetime"}
    montgomery = CONTRACTS["montgomery_traffic"]
    for name in (MONTGOMERY_2016, MONTGOMERY_2017):
        fields = {k for r in adapted(realdata, name) for k in r}
        # search_* columns and SeqID came later (README); every other field maps one to one.
        assert {c.wire_name for c in montgomery.columns} - fields == {
            "seq_id",
            "search_conducted",
            ":updated_at",  # a system field: portal exports never carry it
        }
        assert fields <= {c.wire_name for c in montgomery.columns}


def test_montgomery_seq_id_is_not_a_key(realdata: Path) -> None:
    """README: 18,862 distinct seq_id over 30,000 rows, and 104 (seq_id, charge) pairs repeat:
    one stop has many charges, which is why the contract keys on Socrata's `:id`."""
    records = adapted(realdata, MONTGOMERY_API)
    assert len(records) == 30000
    assert all(UUID.fullmatch(r["seq_id"]) for r in records)
    assert len({r["seq_id"] for r in records}) == 18862
    pairs = Counter((r["seq_id"], r.get("charge")) for r in records)
    assert sum(1 for n in pairs.values() if n > 1) == 104
    assert CONTRACTS["montgomery_traffic"].key_column.wire_name == ":id"


def test_chicago_snapshots_show_what_incremental_capture_must_handle(realdata: Path) -> None:
    """Between the 2022-12-01 and 2022-12-31 snapshots (README): 132 new ids, 1 removed, 610
    changed, each changed row with a newer updated_on and no change without one."""
    before = {r["id"]: r for r in adapted(realdata, CHICAGO_DEC01)}
    after = {r["id"]: r for r in adapted(realdata, CHICAGO_DEC31)}
    assert (len(before), len(after)) == (8054, 8185)  # ids are unique in both
    new, removed = after.keys() - before.keys(), before.keys() - after.keys()
    kept = before.keys() & after.keys()
    changed = {i for i in kept if before[i] != after[i]}
    assert (len(new), len(removed), len(changed)) == (132, 1, 610)

    def stamp(record: adapters.WireRecord) -> datetime:
        return datetime.fromisoformat(record["updated_on"])

    # updated_on moves with every change and never without one, never backwards...
    assert {i for i in kept if stamp(after[i]) != stamp(before[i])} == changed
    assert all(stamp(after[i]) > stamp(before[i]) for i in changed)
    # ...and past the first snapshot's high-water mark, so `updated_on > watermark` finds all
    # changed and new rows, while a window on `date` would miss new rows dated in the past.
    watermark = max(stamp(r) for r in before.values())
    assert all(stamp(after[i]) > watermark for i in changed | new)
    first_pull = datetime(2022, 12, 1)
    assert sum(datetime.fromisoformat(after[i]["date"]) < first_pull for i in new) == 33
    # The removal leaves no trace in updated_on: only comparing ids can see it.
    assert not any(stamp(r) > watermark for r in after.values() if r["id"] in removed)
    # What changed (README): 605 lost their coordinates, 9 arrest flips, 1 reclassification.
    lost = {i for i in changed if "latitude" in before[i] and "latitude" not in after[i]}
    assert len(lost) == 605
    assert all(not {"x_coordinate", "y_coordinate", "longitude"} & after[i].keys() for i in lost)
    assert sum(before[i]["arrest"] != after[i]["arrest"] for i in changed) == 9
    assert sum(before[i]["iucr"] != after[i]["iucr"] for i in changed) == 1


def test_print_per_file_table(realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The per-file summary: rows, rejected, top reasons, unknown fields (shown without -s)."""
    lines = [
        f"{'case':<24} {'rows':>6} {'rejected':>8} {'share':>7}  absent required | unknown | "
        "top reasons"
    ]
    for case in CASES:
        result = outcome(realdata, case)
        report = result.report
        reasons = "; ".join(f"{reason} ({n})" for reason, n in report.top_reasons[:3]) or "-"
        lines.append(
            f"{case.id:<24} {report.extracted:>6} {report.rejected:>8} "
            f"{report.rejected_share:>7.2%}  {','.join(result.batch.absent_required) or '-'} | "
            f"{','.join(sorted(result.batch.unknown_fields)) or '-'} | {reasons}"
        )
    table = "\n".join(lines)
    with capsys.disabled():
        print("\n" + table)
    assert len(lines) == len(CASES) + 1
