"""User story: a portal retires SODA 2 (Socrata's documented direction). With an app token,
CityPulse reads it through SODA3 and the real records load exactly: the real NYC 311 day here,
the real Chicago snapshots in test_realdata_replay (which reads through SODA3 too). Without a
token it fails at once, saying what to configure, and loads nothing.

Reads the real extracts in ../shared/realdata (skipped when absent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import query
from helpers import by_id, fresh_dataset, task_tries
from test_realdata import NYC_JSON, adapted

pytestmark = [pytest.mark.realdata, pytest.mark.integration]

TOKEN = "tok-c29kYTMtcmVhbGRhdGE"


@pytest.fixture
def soda2_retired(standin: Any) -> Iterator[Any]:
    """The stand-in as a portal that answers SODA 2 with 410 and SODA3 as `{"data": [...]}`."""
    standin.configure(soda2="retired", soda3_shape="data")
    try:
        yield standin
    finally:
        standin.configure(soda2="served", soda3_shape="rows")


def served(standin: Any, contract: Any, records: list[dict[str, Any]]) -> None:
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, records, key=contract.key_column.wire_name)


def test_the_real_nyc_day_loads_exactly_through_soda3(
    realdata: Path, dagbag: Any, soda2_retired: Any, fresh_warehouse: str,
    contracts: list[Any], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)  # CITYPULSE_SODA_API=auto: SODA3
    contract = by_id(contracts, "nyc_311")
    records = adapted(realdata, NYC_JSON)
    served(soda2_retired, contract, records)
    soda2_retired.requests_log.clear()
    run = dagbag.dags["nyc_311"].test(
        run_conf={"start_date": "2024-05-26", "end_date": "2024-05-27"}
    )
    assert {state for state, _ in task_tries(run).values()} == {"success"}
    paths = {r.path for r in soda2_retired.requests_log}
    assert paths and all(not p.startswith("/resource/") for p in paths), paths
    assert any(p.startswith("/api/v3/views/") for p in paths)
    stored = dict(
        query(
            fresh_warehouse,
            "SELECT unique_key::text, status FROM citypulse.nyc_311 WHERE cp_deleted_at IS NULL",
        )
    )
    assert stored == {r["unique_key"]: r.get("status") for r in records}


@pytest.mark.parametrize(
    ("api", "said"),
    [
        ("soda3", "SOCRATA_APP_TOKEN"),  # SODA3 needs a token: refused before any request
        ("auto", "CITYPULSE_SODA_API=soda3"),  # no token: SODA 2.1, which the portal retired
    ],
)
def test_without_a_token_a_soda3_portal_fails_at_once_and_loads_nothing(
    realdata: Path, dagbag: Any, soda2_retired: Any, fresh_warehouse: str,
    contracts: list[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    api: str, said: str,
) -> None:  # fmt: skip
    monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)
    monkeypatch.setenv("CITYPULSE_SODA_API", api)
    contract = by_id(contracts, "nyc_311")
    served(soda2_retired, contract, adapted(realdata, NYC_JSON))
    with caplog.at_level(logging.ERROR):
        run = dagbag.dags["nyc_311"].test(
            run_conf={"start_date": "2024-05-26", "end_date": "2024-05-27"}
        )
    assert task_tries(run)["extract"] == ("failed", 1)  # at once: no retry can help
    assert said in caplog.text
    assert query(fresh_warehouse, "SELECT to_regclass('citypulse.nyc_311')") == [(None,)]
