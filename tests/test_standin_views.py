"""The stand-in's view metadata (`GET /api/views/<id>.json`, citypulse_dev.standin.views)
answers like a live portal's: epoch-second `rowsUpdatedAt` that moves with every write,
change or deletion of a record, the row identifier, and typed columns with their cached
contents, all figures as strings; faults and lies on demand.

Each test starts its own server on an ephemeral port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from citypulse_dev.standin.server import Fault, SodaStandIn

DATASET = "view-0001"
RECORDS = [
    {
        "unique_key": str(i),
        "beat": f"{i % 3:04d}",  # codes with leading zeros: text on the live portals
        "created_date": f"2024-05-{i:02d}T02:08:00.000",
        "is_flagged": i % 2 == 0,
        "location": {"latitude": "40.8", "longitude": "-73.9", "human_address": "{}"},
        **({"status": "Open" if i % 4 else "Closed"} if i != 5 else {}),
    }
    for i in range(1, 11)
]


@pytest.fixture
def soda() -> Iterator[SodaStandIn]:
    server = SodaStandIn()
    server.start()
    server.declare(
        DATASET,
        {"unique_key": "number", "created_date": "timestamp", "is_flagged": "boolean"},
        key="unique_key",
    )
    server.put(DATASET, RECORDS, key="unique_key")
    yield server
    server.stop()


def view(soda: SodaStandIn, dataset_id: str = DATASET) -> requests.Response:
    return requests.get(f"{soda.base_url}/api/views/{dataset_id}.json", timeout=5)


def newest_update(soda: SodaStandIn) -> int:
    stamps = [r[":updated_at"] for r in soda.records(DATASET)]
    return int(datetime.fromisoformat(max(stamps)).replace(tzinfo=UTC).timestamp())


def next_second() -> None:
    """Sleep into the next epoch second (rowsUpdatedAt counts seconds)."""
    time.sleep(1.001 - time.time() % 1)


def test_view_metadata_describes_the_dataset_like_a_live_portal(soda: SodaStandIn) -> None:
    answer = view(soda)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["name"]) == (DATASET, DATASET)
    assert body["rowsUpdatedAt"] == newest_update(soda)
    assert isinstance(body["viewLastModified"], int)
    columns = {c["fieldName"]: c for c in body["columns"]}
    assert body["rowIdentifierColumnId"] == columns["unique_key"]["id"]
    assert {f: columns[f]["dataTypeName"] for f in columns} == {
        ":id": "meta_data",
        ":created_at": "meta_data",
        ":updated_at": "meta_data",
        "unique_key": "number",
        "beat": "text",
        "created_date": "calendar_date",
        "is_flagged": "checkbox",
        "location": "location",
        "status": "text",
    }
    data = [c for c in body["columns"] if c["id"] != -1]
    assert [c["position"] for c in data] == list(range(1, len(data) + 1))
    key = columns["unique_key"]["cachedContents"]
    assert (key["non_null"], key["null"], key["cardinality"]) == ("10", "0", "10")
    assert (key["smallest"], key["largest"], key["sum"]) == ("1", "10", "55")  # numerically
    status = columns["status"]["cachedContents"]
    assert (status["non_null"], status["null"], status["cardinality"]) == ("9", "1", "2")
    assert status["top"] == [{"item": "Open", "count": "7"}, {"item": "Closed", "count": "2"}]
    assert (status["smallest"], status["largest"]) == ("Closed", "Open")
    beat = columns["beat"]["cachedContents"]
    assert (beat["smallest"], beat["largest"]) == ("0000", "0002")
    assert columns["created_date"]["cachedContents"]["largest"] == "2024-05-10T02:08:00.000"


def test_rows_updated_at_moves_with_every_write_change_and_deletion(soda: SodaStandIn) -> None:
    admin = f"{soda.base_url}/_standin/datasets/{DATASET}"
    seen = [view(soda).json()["rowsUpdatedAt"]]

    def changed() -> bool:
        seen.append(view(soda).json()["rowsUpdatedAt"])
        return seen[-1] > seen[-2]

    # Epoch seconds: each step waits for the clock to pass a second.
    for step in (
        lambda: requests.post(f"{admin}/records", json=[{"unique_key": "11"}], timeout=5),
        lambda: requests.post(
            f"{admin}/records?key=unique_key", json=[{"unique_key": "3"}], timeout=5
        ),
        lambda: requests.delete(
            f"{admin}/records", params={"key": "unique_key", "values": "4"}, timeout=5
        ),
    ):
        next_second()
        assert step().ok
        assert changed()
    next_second()
    requests.get(f"{soda.base_url}/resource/{DATASET}.json", timeout=5)
    requests.delete(f"{admin}/records", params={"key": "unique_key", "values": "999"}, timeout=5)
    assert not changed()  # a read, or a deletion of nothing, changes no row


def test_records_carrying_their_own_stamps_set_rows_updated_at(soda: SodaStandIn) -> None:
    soda.put("stamped-0001", [{"k": "1", ":updated_at": "2022-12-31T10:00:00.000Z"}])
    soda.put("stamped-0001", [{"k": "2", ":updated_at": "2022-12-01T10:00:00.000Z"}])
    assert view(soda, "stamped-0001").json()["rowsUpdatedAt"] == int(
        datetime(2022, 12, 31, 10, tzinfo=UTC).timestamp()
    )


def test_an_unknown_view_is_404_and_a_dataset_without_key_has_no_row_identifier(
    soda: SodaStandIn,
) -> None:
    missing = view(soda, "none-0000")
    assert missing.status_code == 404 and "none-0000" in missing.json()["message"]
    soda.put("nokey-0001", [{"k": "1"}])
    assert "rowIdentifierColumnId" not in view(soda, "nokey-0001").json()


def test_metadata_faults_hit_the_view_and_leave_queries_alone(soda: SodaStandIn) -> None:
    soda.add_fault(Fault(status=503, metadata=True, times=1))
    assert requests.get(f"{soda.base_url}/resource/{DATASET}.json", timeout=5).ok
    assert view(soda).status_code == 503
    assert view(soda).ok  # used up
    soda.add_fault(Fault(status=503, times=1))  # a query fault
    assert view(soda).ok
    soda.add_fault(Fault(body="[]", metadata=True, times=1))
    assert view(soda).json() == []
    logged = [(r.path, r.status) for r in soda.requests_log if r.path.startswith("/api/views/")]
    assert logged == [(f"/api/views/{DATASET}.json", s) for s in (503, 200, 200, 200)]


def test_the_view_can_be_made_to_lie_and_to_tell_the_truth_again(soda: SodaStandIn) -> None:
    admin = f"{soda.base_url}/_standin/datasets/{DATASET}/view"
    truth = view(soda).json()
    assert requests.post(admin, json={"rowsUpdatedAt": 7, "name": "Lies"}, timeout=5).ok
    lie = view(soda).json()
    assert (lie["rowsUpdatedAt"], lie["name"], lie["columns"]) == (7, "Lies", truth["columns"])
    assert requests.post(admin, json={"rowsUpdatedAt": None}, timeout=5).ok
    assert "rowsUpdatedAt" not in view(soda).json()
    assert requests.delete(admin, timeout=5).ok
    assert view(soda).json() == truth


def test_columns_declared_over_the_admin_api_name_the_row_identifier(soda: SodaStandIn) -> None:
    url = f"{soda.base_url}/_standin/datasets/adm-0002/columns?key=case_id"
    assert requests.post(url, json={"case_id": "text", "n": "number"}, timeout=5).ok
    body = view(soda, "adm-0002").json()
    ids = {c["fieldName"]: c["id"] for c in body["columns"]}
    assert body["rowIdentifierColumnId"] == ids["case_id"]
    assert body["columns"][-1]["cachedContents"]["non_null"] == "0"


def test_point_columns_are_points(soda: SodaStandIn) -> None:
    point: dict[str, Any] = {"type": "Point", "coordinates": [-87.6, 41.8]}
    soda.put("geo-0001", [{"k": "1", "where": point}])
    columns = {c["fieldName"]: c for c in view(soda, "geo-0001").json()["columns"]}
    assert columns["where"]["dataTypeName"] == "point"
    assert columns["where"]["cachedContents"]["top"] == [{"item": point, "count": "1"}]
