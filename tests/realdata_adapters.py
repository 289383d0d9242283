"""Turn the real public extracts in ../shared/realdata into SODA 2.1 JSON wire records.

The pipeline consumes what `GET /resource/<id>.json` returns: a list of objects, every value a
string (checkbox booleans may be JSON true/false), floating timestamps such as
`2024-05-27T02:08:51.000`, and null fields OMITTED rather than sent empty. The real files come
in other shapes (API CSV, portal exports with display names), so each adapter below undoes
exactly what the README of its folder says was done to the API output, and nothing more: the
values are the real ones, so the contracts meet real data, not a cleaned copy of it.

Nothing here is copied into the repository: the adapters read the files at test time.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

WireRecord = dict[str, Any]
Adapter = Callable[[Path], list[WireRecord]]

FLOATING_FORMAT = "%Y-%m-%dT%H:%M:%S.000"  # Socrata floating_timestamp, as the API sends it


# --- Shared steps ----------------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a CSV file as text; `utf-8-sig` drops the BOM the Seattle portal export has.

    The stdlib reader (not pandas) keeps every value the exact text of the file: no leading
    zeros lost ("0711"), no ids turned into floats.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def _wire(
    row: dict[str, str], rename: dict[str, str] | None = None, drop: Iterable[str] = ()
) -> WireRecord:
    """One CSV row as a wire record: renamed, dropped columns removed, empty cells omitted.

    CSV has no null: SODA writes a null as an empty cell, while the JSON API leaves the field
    out of the object altogether, so an empty cell becomes a missing key.
    """
    rename = rename or {}
    dropped = set(drop)
    return {
        rename.get(name, name): value
        for name, value in row.items()
        if name not in dropped and value != ""
    }


def _floating(text: str, pattern: str) -> str:
    """A portal-export timestamp as the API's floating timestamp (local wall time, no zone)."""
    return datetime.strptime(text, pattern).strftime(FLOATING_FORMAT)


def synthetic_row_id(source: str, line: int) -> str:
    """A stable Socrata-style `:id` (`row-xxxx.xxxx.xxxx`) for one row of an export.

    Socrata assigns `:id` server-side and only the JSON API returns it (with $select=:*,*);
    portal exports omit it. The id is a hash of the file name and the row's line, so it is the
    same on every run and unique within a file, which is all the contract's key needs.
    """
    digest = hashlib.sha1(f"{source}:{line}".encode()).hexdigest()
    return f"row-{digest[:4]}.{digest[4:8]}.{digest[8:12]}"


# --- NYC 311 (erm2-nwe9) ---------------------------------------------------------------------


def nyc_json(path: Path) -> list[WireRecord]:
    """lostchemist_nyc_311_data.json is already the API's JSON: passed through as is.

    (README: every value a string, null fields omitted, `location` an object, hidden
    `:@computed_region_*` keys; only the whitespace of the serialisation was changed.)
    """
    records: list[WireRecord] = json.loads(path.read_text(encoding="utf-8"))
    return records


def nyc_csv(path: Path) -> list[WireRecord]:
    """A SODA CSV export of erm2-nwe9 (API column names) as the JSON API would send it.

    - Empty cells -> omitted fields (CSV's null).
    - `location` is dropped: CSV renders the location object as the string
      "\\n,  \\n(lat, lon)", which the JSON API sends as an object instead; the contract does
      not load it (latitude/longitude are columns of their own), so nothing is lost.
    - kyoungb_erm2-nwe9.csv was re-saved unquoted with lat/lon rounded to 8 dp (README): the
      values are still valid numbers, so they pass through; the rounding cannot be undone.
    """
    return [_wire(row, drop=("location",)) for row in _csv_rows(path)]


# --- Chicago crimes (ijzp-q8t2) --------------------------------------------------------------

CHICAGO_HEADER_FIX = {"lat": "latitude", "lon": "longitude"}


def chicago_csv(path: Path) -> list[WireRecord]:
    """The cbschicago snapshots: verbatim SODA CSV bodies under a header the repo wrote.

    - The repo's header renamed the API's `latitude`/`longitude` to `lat`/`lon` (README):
      mapped back.
    - `arrest`/`domestic` stay the strings "true"/"false" (the contract's default true/false
      values; the JSON API sends checkbox columns as JSON booleans, which parse the same).
    - `location` (rendered string) dropped and empty cells omitted, as for NYC.
    """
    return [_wire(row, CHICAGO_HEADER_FIX, drop=("location",)) for row in _csv_rows(path)]


# --- Seattle SPD crime (tazs-3rd5) -----------------------------------------------------------

# The OLD schema's display names -> the CURRENT (NIBRS, 2025+) API fields of the same meaning.
SEATTLE_OLD_TO_CURRENT = {
    "Report Number": "report_number",
    "Offense ID": "offense_id",
    "Report DateTime": "report_date_time",
    "Offense Start DateTime": "offense_date",
    "Group A B": "nibrs_group_a_b",
    "Crime Against Category": "nibrs_crime_against_category",
    "Offense Parent Group": "offense_sub_category",
    "Offense": "nibrs_offense_code_description",
    "Offense Code": "nibrs_offense_code",
    "Precinct": "precinct",
    "Sector": "sector",
    "Beat": "beat",
    "MCPP": "neighborhood",
    "100 Block Address": "block_address",
    "Latitude": "latitude",
    "Longitude": "longitude",
    # No current counterpart: kept under its old API name (README), so the pipeline sees and
    # reports it as an unknown field, as it would if the portal sent it.
    "Offense End DateTime": "offense_end_datetime",
}
SEATTLE_TIMESTAMPS = ("report_date_time", "offense_date", "offense_end_datetime")
SEATTLE_EXPORT_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # "02/05/2020 09:39:33 AM" (README)


def seattle_old_csv(path: Path) -> list[WireRecord]:
    """The OLD-schema portal export (display names, BOM, US timestamps) in CURRENT API fields.

    - Display names -> current API fields where the meaning is the same (mapping above).
    - "MM/DD/YYYY hh:mm:ss AM" -> floating ISO, the API's form for the same wall time.
    - Values are kept as the old schema had them: precinct "W" (now "West"), coordinates
      "0" where the old schema had no location (the current one sends "REDACTED").
    - No `offense_category` (required by the contract; the current schema's coarse grouping)
      and no `reporting_area` / `census_block_2020`: the old export simply lacks them, so the
      records omit them. See `with_offense_category` for the stand-in used to check the rest.
    """
    records = []
    for row in _csv_rows(path):
        record = _wire(row, SEATTLE_OLD_TO_CURRENT)
        for name in SEATTLE_TIMESTAMPS:
            if name in record:
                record[name] = _floating(record[name], SEATTLE_EXPORT_FORMAT)
        records.append(record)
    return records


def with_offense_category(records: list[WireRecord]) -> list[WireRecord]:
    """Copies with `offense_category` filled from the old Offense Parent Group.

    A stand-in, not the real current category (the current schema would say e.g. "VIOLENT
    CRIME"): it only lets the rest of each record be validated once the schema-drift check on
    the missing required column has been seen to fire.
    """
    return [
        {**r, "offense_category": r["offense_sub_category"]} if "offense_sub_category" in r else r
        for r in records
    ]


def seattle_json(path: Path) -> list[WireRecord]:
    """new_schema_example.json is a real current-schema API record list: passed through."""
    records: list[WireRecord] = json.loads(path.read_text(encoding="utf-8"))
    return records


# --- Montgomery County traffic violations (4mse-ku6q) ----------------------------------------

# Display name -> API field name, as listed (and verified) in montgomery/README.txt.
MONTGOMERY_DISPLAY_TO_API = {
    "Date Of Stop": "date_of_stop",
    "Time Of Stop": "time_of_stop",
    "Agency": "agency",
    "SubAgency": "subagency",
    "Description": "description",
    "Location": "location",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Accident": "accident",
    "Belts": "belts",
    "Personal Injury": "personal_injury",
    "Property Damage": "property_damage",
    "Fatal": "fatal",
    "Commercial License": "commercial_license",
    "HAZMAT": "hazmat",
    "Commercial Vehicle": "commercial_vehicle",
    "Alcohol": "alcohol",
    "Work Zone": "work_zone",
    "State": "state",
    "VehicleType": "vehicle_type",
    "Year": "year",
    "Make": "make",
    "Model": "model",
    "Color": "color",
    "Violation Type": "violation_type",
    "Charge": "charge",
    "Article": "article",
    "Contributed To Accident": "contributed_to_accident",
    "Race": "race",
    "Gender": "gender",
    "Driver City": "driver_city",
    "Driver State": "driver_state",
    "DL State": "dl_state",
    "Arrest Type": "arrest_type",
    "Geolocation": "geolocation",
}
MONTGOMERY_EXPORT_DATE = "%m/%d/%Y"  # "09/30/2014" (README)


def montgomery_export_csv(path: Path) -> list[WireRecord]:
    """A 2016-17 portal export (display names) of 4mse-ku6q as API records of that time.

    - Display names -> API field names (README mapping).
    - Date Of Stop "MM/DD/YYYY" -> "YYYY-MM-DDT00:00:00.000": the API's floating timestamp at
      midnight; Time Of Stop stays "HH:MM:SS" text, as the API sends it; Yes/No flags stay text.
    - `:id` synthesised (`synthetic_row_id`): the contract keys on Socrata's row id because
      seq_id repeats, and exports never carry `:id`.
    - `seq_id` is NOT invented: these older exports have no SeqID column (README), so the
      records lack it, as the API of the time did. See `with_stop_seq_id` for the stand-in.
    - `geolocation` ("(lat, lon)", the rendered location object) dropped: the contract does not
      load it; Latitude/Longitude carry the same point.
    """
    records = []
    for line, row in enumerate(_csv_rows(path), start=2):  # line 1 is the header
        record = _wire(row, MONTGOMERY_DISPLAY_TO_API, drop=("Geolocation",))
        if "date_of_stop" in record:
            midnight = datetime.strptime(record["date_of_stop"], MONTGOMERY_EXPORT_DATE)
            record["date_of_stop"] = midnight.strftime(FLOATING_FORMAT)
        records.append({":id": synthetic_row_id(path.name, line), **record})
    return records


# Fields that are the same for every charge written at one stop: their values identify it.
MONTGOMERY_STOP_FIELDS = (
    "date_of_stop",
    "time_of_stop",
    "subagency",
    "location",
    "latitude",
    "longitude",
    "state",
    "vehicle_type",
    "year",
    "make",
    "model",
    "color",
    "race",
    "gender",
    "driver_city",
    "driver_state",
    "dl_state",
    "arrest_type",
)


def with_stop_seq_id(records: list[WireRecord]) -> list[WireRecord]:
    """Copies with a stand-in `seq_id`: a UUID-shaped hash of the stop's own fields.

    seq_id names a stop (one stop, many charges), so charges sharing every stop-level field
    share the stand-in too; a stand-in only, so the other columns can be validated.
    """
    out = []
    for record in records:
        stop = "|".join(str(record.get(name, "")) for name in MONTGOMERY_STOP_FIELDS)
        digest = hashlib.sha1(stop.encode()).hexdigest()
        seq_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        out.append({**record, "seq_id": seq_id})
    return out


def montgomery_api_subset_csv(path: Path) -> list[WireRecord]:
    """wisundstrom's 30,000-row $select of the JSON API, saved by pandas.

    - The leading unnamed column is pandas' row index, not an API field: dropped.
    - Field names are already the API's; empty cells -> omitted fields.
    - Only 12 selected columns: no `:id`, no event time, so it can only show what it holds.
    """
    return [_wire(row, drop=("",)) for row in _csv_rows(path)]


# --- Which adapter reads which file ----------------------------------------------------------

ADAPTERS: dict[str, Adapter] = {
    "nyc311/lostchemist_nyc_311_data.json": nyc_json,
    "nyc311/lostchemist_erm2-nwe9.csv": nyc_csv,
    "nyc311/kyoungb_erm2-nwe9.csv": nyc_csv,
    "nyc311/mohrum12_erm2-nwe9.csv": nyc_csv,
    "chicago/cbschicago_carjacking-all-latest-raw_2022-12-01.csv": chicago_csv,
    "chicago/cbschicago_carjacking-all-latest-raw_2022-12-31.csv": chicago_csv,
    "seattle/myronbanez_SPD_Crime_Data__2008-Present.csv": seattle_old_csv,
    "seattle/new_schema_example.json": seattle_json,
    "montgomery/nikolausn_Traffic_Violations.csv": montgomery_export_csv,
    "montgomery/tolu238_Traffic_Violations.csv": montgomery_export_csv,
    "montgomery/wisundstrom_pre_clean_data_api_subset.csv": montgomery_api_subset_csv,
}


def adapt(root: Path, name: str) -> list[WireRecord]:
    """The wire records of one real file, `name` relative to the realdata folder."""
    return ADAPTERS[name](root / name)
