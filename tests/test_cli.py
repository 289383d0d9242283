"""The `citypulse` console script's contract commands (citypulse.cli): `contract init` drafts
a contract from the stand-in portal through the pipeline's own client (its token, its base
URL), `contract check` validates one file naming the broken field, `contract schema` prints
the JSON Schema; `contracts check --dir` still checks a folder; `python -m citypulse` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from citypulse.cli import main
from citypulse.contracts.contract import load_contract
from conftest import ROOT

DATASET = "init-0001"
TOKEN = "tok-Y29udHJhY3QgaW5pdA"
RECORDS = [
    {"request_id": str(1000 + i), "created_date": f"2025-03-{1 + i % 28:02d}T0{i % 10}:15:00.000",
     "status": "Open" if i % 3 else "Closed", "latitude": f"47.{600 + i % 50}",
     "longitude": f"-122.{300 + i % 40}"}
    for i in range(120)
]  # fmt: skip


@pytest.fixture
def portal(standin: Any) -> Any:
    standin.clear(DATASET)
    standin.declare(
        DATASET,
        {"request_id": "number", "created_date": "timestamp", "latitude": "number",
         "longitude": "number", "status": "text"},
    )  # fmt: skip
    standin.put(DATASET, RECORDS)
    standin.requests_log.clear()
    return standin


def test_contract_init_drafts_a_contract_that_loads_through_the_pipelines_client(
    portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    out = tmp_path / "requests.yaml"
    code = main(["contract", "init", "--portal", "data.seattle.gov", "--dataset", DATASET,
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    contract = load_contract(out)
    assert (contract.key, contract.event_time, contract.timezone) == (
        "request_id",
        "created_date",
        "America/Los_Angeles",
    )
    assert contract.column("request_id").type == "bigint"
    assert contract.column("status").values == ["Open", "Closed"]
    assert "review before use" in printed and "incidents" in printed and "holidays" in printed
    asked = [r for r in portal.requests_log if r.dataset_id == DATASET]
    assert asked[0].path == f"/api/views/{DATASET}.json"
    assert len(asked) == 8  # the metadata and 7 queries, as portal/profile.py says
    assert all(r.app_token_present for r in asked)  # SOCRATA_APP_TOKEN, as the pipeline


def test_contract_init_writes_to_stdout_and_fails_cleanly_on_an_unknown_dataset(
    portal: Any, capsys: Any
) -> None:
    assert main(["contract", "init", "--portal", "data.seattle.gov", "--dataset", DATASET,
                 "--timezone", "America/Denver"]) == 0  # fmt: skip
    drafted = capsys.readouterr()
    assert "timezone: America/Denver  # given" in drafted.out
    assert "columns:" in drafted.out and "review before use" in drafted.err
    assert main(["contract", "init", "--portal", "data.seattle.gov", "--dataset",
                 "none-0000"]) == 1  # fmt: skip
    assert "none-0000" in capsys.readouterr().err


def test_contract_check_validates_one_file_and_names_the_broken_field(
    tmp_path: Path, capsys: Any
) -> None:
    good = ROOT / "include" / "contracts" / "nyc_311.yaml"
    assert main(["contract", "check", str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok      nyc_311")
    broken = tmp_path / "nyc_311.yaml"
    broken.write_text(good.read_text().replace("key: unique_key", "key: no_such_column"))
    assert main(["contract", "check", str(broken)]) == 1
    printed = capsys.readouterr().out
    assert "broken" in printed and "key names column 'no_such_column'" in printed


def test_contract_schema_is_the_models_json_schema(capsys: Any) -> None:
    assert main(["contract", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Contract"
    assert {"dag_id", "key", "event_time", "columns", "incremental"} <= set(schema["properties"])
    assert "key" in schema["required"]


def test_contracts_check_still_checks_a_folder(tmp_path: Path, capsys: Any) -> None:
    shutil.copy(ROOT / "include" / "contracts" / "chicago_crime.yaml", tmp_path)
    assert main(["contracts", "check", "--dir", str(tmp_path)]) == 0
    assert "ok      chicago_crime" in capsys.readouterr().out


def test_python_dash_m_citypulse_runs_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    done = subprocess.run(
        [sys.executable, "-m", "citypulse", "contract", "schema"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["title"] == "Contract"
    usage = subprocess.run([sys.executable, "-m", "citypulse", "contract"], capture_output=True,
                           text=True, env=env, timeout=120)  # fmt: skip
    assert usage.returncode == 2 and "init|check|schema" in usage.stderr


def test_contract_init_asks_what_a_portal_without_cached_contents_does_not_say(
    portal: Any, tmp_path: Path, capsys: Any
) -> None:
    """Without `cachedContents` the counts, ranges and value sets come from queries: the
    same draft, one grouped query more per column."""
    bare = [{k: v for k, v in c.items() if k != "cachedContents"} for c in portal.view(DATASET)
            ["columns"]]  # fmt: skip
    portal.lie_in_view(DATASET, {"columns": bare})
    out = tmp_path / "requests.yaml"
    try:
        assert main(["contract", "init", "--portal", "data.seattle.gov", "--dataset", DATASET,
                     "--out", str(out)]) == 0, capsys.readouterr()  # fmt: skip
    finally:
        portal.lie_in_view(DATASET, {})
    contract = load_contract(out)
    assert (contract.key, contract.event_time, contract.start_date.isoformat()) == (
        "request_id",
        "created_date",
        "2025-01-01",
    )
    assert contract.column("status").values == ["Open", "Closed"]
    assert contract.column("request_id").required
    asked = [r for r in portal.requests_log if r.dataset_id == DATASET]
    assert len(asked) == 8 + 5  # one grouped query per column
