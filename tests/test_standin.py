"""The SODA stand-in answers the real `sodapy` client the way Socrata portals do.

Each test starts its own server on an ephemeral port (the session-wide `standin` fixture in
conftest.py is shared by the pipeline tests and must not see these datasets or faults).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sodapy import Socrata

from citypulse_dev.standin import soql
from citypulse_dev.standin.server import Fault, SodaStandIn, load_ndjson

TOKEN = "tok-standin-s3cret-value"
DATASET = "test-0001"
ClientFactory = Callable[..., Socrata]
ROOT = Path(__file__).resolve().parents[1]


def sample_records(count: int = 30) -> list[dict[str, Any]]:
    """Records shaped like NYC 311's wire format: strings, one boolean, one location object."""
    records = []
    for i in range(1, count + 1):
        record: dict[str, Any] = {
            "unique_key": str(i),
            "ref": str(i),  # the same digits in an undeclared (text) column
            "created_date": f"2024-05-{(i - 1) % 28 + 1:02d}T02:08:{i % 60:02d}.000",
            "status": ("Open", "Closed", "Pending")[i % 3],
            "is_flagged": i % 2 == 0,
            "location": {"latitude": "40.84", "longitude": "-73.93", "human_address": "{}"},
        }
        if i % 4:
            record["closed_date"] = f"2024-06-{(i - 1) % 28 + 1:02d}T00:00:00.000"
        records.append(record)
    if count >= 7:
        records[6]["status"] = "O'Brien's"
    return records


@pytest.fixture
def soda() -> Iterator[SodaStandIn]:
    """A fresh stand-in with DATASET loaded (unique_key numeric, dates as timestamps)."""
    server = SodaStandIn()
    server.start()
    server.declare(
        DATASET,
        {"unique_key": "number", "created_date": "timestamp", "closed_date": "timestamp"},
    )
    server.put(DATASET, sample_records(), key="unique_key")
    yield server
    server.stop()


@pytest.fixture
def make_client(soda: SodaStandIn) -> Iterator[ClientFactory]:
    """Build real sodapy clients pointed at the stand-in over plain HTTP."""
    clients: list[Socrata] = []

    def make(timeout: float = 5, token: str | None = TOKEN) -> Socrata:
        adapter = {"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()}
        client = Socrata(soda.domain, token, session_adapter=adapter, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> Socrata:
    return make_client()


def keys(rows: list[dict[str, Any]]) -> list[int]:
    return [int(row["unique_key"]) for row in rows]


def response_of(caught: pytest.ExceptionInfo[requests.HTTPError]) -> requests.Response:
    """The HTTP response sodapy attached to the error it raised."""
    response = caught.value.response
    assert response is not None
    return response


# ---------------------------------------------------------------------------------------------
# Wire format and SoQL through sodapy


def test_wire_format_strings_booleans_locations_and_omitted_nulls(
    soda: SodaStandIn, client: Socrata
) -> None:
    rows = client.get(DATASET, where="unique_key in (1, 4)", order="unique_key")
    assert keys(rows) == [1, 4]
    first, fourth = rows
    assert first["created_date"] == "2024-05-01T02:08:01.000"
    assert first["is_flagged"] is False and fourth["is_flagged"] is True
    assert first["location"]["latitude"] == "40.84"
    assert "closed_date" in first and "closed_date" not in fourth
    assert not any(key.startswith(":") for key in first)
    raw = requests.get(f"{soda.base_url}/resource/{DATASET}.json", timeout=5)
    assert raw.headers["Content-Type"] == "application/json; charset=utf-8"


def test_select_where_order_limit_offset(client: Socrata) -> None:
    rows = client.get(
        DATASET,
        select="unique_key, status",
        where="status = 'Open' AND unique_key > 3",
        order="unique_key DESC",
        limit=3,
        offset=1,
    )
    open_keys = sorted(
        (r["unique_key"] for r in sample_records() if r["status"] == "Open"), key=int
    )
    expected = [int(k) for k in reversed(open_keys) if int(k) > 3][1:4]
    assert keys(rows) == expected
    assert all(set(row) == {"unique_key", "status"} for row in rows)


def test_numbers_order_numerically_and_text_lexically(client: Socrata) -> None:
    numeric = client.get(DATASET, select="unique_key", order="unique_key", limit=12)
    assert keys(numeric) == list(range(1, 13))
    text = client.get(DATASET, select="ref", order="ref", limit=4)
    assert [row["ref"] for row in text] == ["1", "10", "11", "12"]
    newest = client.get(
        DATASET, select="unique_key", order="created_date DESC, unique_key", limit=2
    )
    assert keys(newest) == [28, 27]
    assert keys(client.get(DATASET, where="unique_key >= '29'", order="unique_key")) == [29, 30]


def test_system_fields_only_on_request(client: Socrata) -> None:
    plain = client.get(DATASET, where="unique_key = 1")[0]
    assert ":id" not in plain
    full = client.get(DATASET, where="unique_key = 1", exclude_system_fields=False)[0]
    assert re.fullmatch(r"row-[a-z0-9]{4}\.[a-z0-9]{4}\.[a-z0-9]{4}", full[":id"])
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp, full[":created_at"]) and re.fullmatch(stamp, full[":updated_at"])
    picked = client.get(DATASET, select=":id, :updated_at, unique_key", where="unique_key = 1")
    assert picked == [{k: full[k] for k in (":id", ":updated_at", "unique_key")}]
    system_only = client.get(DATASET, select=":*", where="unique_key = 1")[0]
    assert set(system_only) == {":id", ":created_at", ":updated_at"}
    assert client.get(DATASET, select=":*, *", where="unique_key = 1")[0] == full


def test_count_star_with_and_without_alias(client: Socrata) -> None:
    assert client.get(DATASET, select="count(*)") == [{"count": "30"}]
    open_count = sum(r["status"] == "Open" for r in sample_records())
    assert client.get(DATASET, select="count(*) AS n", where="status = 'Open'") == [
        {"n": str(open_count)}
    ]


def test_grouped_counts_and_newest_values_per_day(client: Socrata) -> None:
    """What the partition audit asks: per day of a timestamp, the count and the newest value."""
    rows = client.get(
        DATASET,
        select="date_trunc_ymd(created_date) AS day, count(*) AS n, max(closed_date) AS changed",
        group="day",
        order="day DESC",
        limit=3,
    )
    records = sample_records()
    days = sorted({r["created_date"][:10] for r in records}, reverse=True)[:3]
    assert [r["day"] for r in rows] == [f"{d}T00:00:00.000" for d in days]
    for row in rows:
        mine = [r for r in records if r["created_date"].startswith(row["day"][:10])]
        assert row["n"] == str(len(mine))
        closed = [r["closed_date"] for r in mine if "closed_date" in r]
        assert row.get("changed") == (max(closed) if closed else None)
    # `$group` by the expression itself, and an aggregate over the whole dataset.
    by_month = client.get(
        DATASET, select="date_trunc_ym(created_date), count(*)", group="date_trunc_ym(created_date)"
    )
    assert by_month == [{"date_trunc_ym_created_date": "2024-05-01T00:00:00.000", "count": "30"}]
    assert client.get(DATASET, select="max(created_date) AS newest") == [
        {"newest": max(r["created_date"] for r in records)}
    ]


def test_a_plain_column_must_be_grouped(client: Socrata) -> None:
    with pytest.raises(requests.HTTPError, match="must appear in \\$group") as caught:
        client.get(DATASET, select="status, count(*)", group="created_date")
    assert response_of(caught).status_code == 400


def test_paging_by_row_id_returns_each_row_exactly_once(client: Socrata) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        where = "status != 'x'" if cursor is None else f"status != 'x' AND :id > '{cursor}'"
        page = client.get(DATASET, where=where, order=":id", limit=7, exclude_system_fields=False)
        seen += page
        if len(page) < 7:
            break
        cursor = page[-1][":id"]
    assert sorted(keys(seen)) == list(range(1, 31))
    assert [r[":id"] for r in seen] == sorted(r[":id"] for r in seen)


def test_is_null_matches_omitted_fields_and_null_comparisons_are_false(client: Socrata) -> None:
    missing = [i for i in range(1, 31) if i % 4 == 0]
    rows = client.get(DATASET, where="closed_date IS NULL", order="unique_key")
    assert keys(rows) == missing
    present = client.get(DATASET, select="count(*)", where="closed_date is not null")
    assert present == [{"count": str(30 - len(missing))}]
    after = "closed_date > '2000-01-01T00:00:00'"
    assert not set(missing) & set(keys(client.get(DATASET, where=after)))
    assert client.get(DATASET, where=f"NOT ({after})") == []  # NULL stays unknown under NOT


def test_in_between_not_and_quoted_strings(client: Socrata) -> None:
    def where(clause: str) -> list[int]:
        return keys(client.get(DATASET, where=clause, order="unique_key"))

    records = sample_records()
    pending_or_open = [int(r["unique_key"]) for r in records if r["status"] in ("Open", "Pending")]
    assert where("status IN ('Open', 'Pending')") == pending_or_open
    not_closed = [int(r["unique_key"]) for r in records if r["status"] != "Closed"]
    assert where("status not in ('Closed') and unique_key < 100") == not_closed
    assert where("unique_key BETWEEN 5 AND 9") == [5, 6, 7, 8, 9]
    assert where("unique_key NOT BETWEEN 2 AND 29") == [1, 30]
    assert where("NOT (unique_key > 2) OR (unique_key = 30)") == [1, 2, 30]
    assert where("status = 'O''Brien''s'") == [7]
    assert where("is_flagged = true AND unique_key <= 6") == [2, 4, 6]
    assert where("status LIKE 'Pend%' AND unique_key < 6") == [2, 5]


def test_paging_with_order_returns_each_row_exactly_once(
    soda: SodaStandIn, client: Socrata
) -> None:
    soda.put(DATASET, sample_records(253), key="unique_key")
    seen = [row["unique_key"] for row in client.get_all(DATASET, order=":id", limit=40)]
    assert len(seen) == 253 and len(set(seen)) == 253


def test_paging_without_order_repeats_or_misses_rows(soda: SodaStandIn, client: Socrata) -> None:
    soda.put(DATASET, sample_records(253), key="unique_key")
    seen = [row["unique_key"] for row in client.get_all(DATASET, limit=40)]
    assert len(seen) == 253  # page sizes look right, so the client cannot tell...
    assert len(set(seen)) < 253  # ...that it got duplicates and missed rows


# ---------------------------------------------------------------------------------------------
# Errors shaped like Socrata's


def test_unknown_column_is_a_socrata_400(client: Socrata) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        client.get(DATASET, where="foo = 1")
    expected = 'No such column: foo; position: Map(row -> 1, column -> 1, line -> "foo = 1")'
    assert expected in str(caught.value)
    body = response_of(caught).json()
    assert response_of(caught).status_code == 400
    assert body["code"] == "query.soql.no-such-column" and body["error"] is True
    assert body["data"]["column"] == "foo"
    for params in ({"select": "unique_key, nope"}, {"order": "nope DESC"}, {"nope": "x"}):
        with pytest.raises(requests.HTTPError, match="No such column: nope"):
            client.get(DATASET, **params)


def test_malformed_and_mistyped_queries(client: Socrata) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        client.get(DATASET, where="unique_key = ")
    assert response_of(caught).json()["code"] == "query.compiler.malformed"
    assert "Expected an expression" in str(caught.value)
    with pytest.raises(requests.HTTPError) as caught:
        client.get(DATASET, where="unique_key = 'abc'")
    assert response_of(caught).json()["code"] == "query.soql.type-mismatch"
    with pytest.raises(requests.HTTPError, match="Unterminated string"):
        client.get(DATASET, where="status = 'Open")


def test_limit_above_50000_is_refused(client: Socrata) -> None:
    assert len(client.get(DATASET, limit=50000)) == 30
    with pytest.raises(requests.HTTPError, match="exceeds the maximum of 50000") as caught:
        client.get(DATASET, limit=50001)
    assert response_of(caught).status_code == 400


def test_unknown_dataset_is_404(client: Socrata) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        client.get("nope-0000")
    assert response_of(caught).status_code == 404
    assert response_of(caught).json()["code"] == "not_found"


# ---------------------------------------------------------------------------------------------
# Faults


def test_fault_429_carries_retry_after_and_is_used_up(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(Fault(status=429, retry_after=1))
    with pytest.raises(requests.HTTPError) as caught:
        client.get(DATASET)
    assert response_of(caught).status_code == 429
    assert response_of(caught).headers["Retry-After"] == "1"
    assert len(client.get(DATASET)) == 30


def test_fault_503_hits_as_many_times_as_asked(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(Fault(status=503, times=2))
    for _ in range(2):
        with pytest.raises(requests.HTTPError, match="503 Server Error"):
            client.get(DATASET)
    assert len(client.get(DATASET)) == 30
    assert [r.status for r in soda.requests_log] == [503, 503, 200]


def test_fault_delay_beyond_client_timeout(soda: SodaStandIn, make_client: ClientFactory) -> None:
    soda.add_fault(Fault(delay=3))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        make_client(timeout=0.3).get(DATASET)
    assert time.monotonic() - started < 2
    assert len(make_client().get(DATASET)) == 30


def test_fault_drop_closes_the_connection(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(Fault(drop=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get(DATASET)
    assert len(client.get(DATASET)) == 30
    assert soda.requests_log[0].status == 0 and soda.requests_log[0].fault == "drop"


def test_fault_in_the_middle_of_paging(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(Fault(status=503, min_offset=20))
    soda.add_fault(Fault(status=500, dataset_id="other-0000"))  # another dataset's fault
    pages = [client.get(DATASET, order="unique_key", limit=10, offset=o) for o in (0, 10)]
    assert [len(page) for page in pages] == [10, 10]
    with pytest.raises(requests.HTTPError, match="503"):
        client.get(DATASET, order="unique_key", limit=10, offset=20)
    assert len(client.get(DATASET, order="unique_key", limit=10, offset=20)) == 10


def test_fault_400_with_socrata_code(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(
        Fault(status=400, code="query.soql.no-such-column", message="No such column: ghost")
    )
    with pytest.raises(requests.HTTPError, match="No such column: ghost") as caught:
        client.get(DATASET)
    assert response_of(caught).json()["code"] == "query.soql.no-such-column"


def test_fault_short_page_skip_and_kind(soda: SodaStandIn, client: Socrata) -> None:
    """A short page on the second row query only: counts (aggregates) pass untouched."""
    soda.add_fault(Fault(short=3, skip=1, aggregate=False))
    assert len(client.get(DATASET, order="unique_key", limit=10)) == 10
    assert client.get(DATASET, select="count(*) AS n") == [{"n": "30"}]
    assert len(client.get(DATASET, order="unique_key", limit=10, offset=10)) == 3
    assert len(client.get(DATASET, order="unique_key", limit=10, offset=10)) == 10


def test_fault_insert_publishes_records_after_answering(soda: SodaStandIn, client: Socrata) -> None:
    late = {"unique_key": "99", "created_date": "2024-05-01T00:00:00.000", "status": "Open"}
    soda.add_fault(Fault(insert=(late,), aggregate=False))
    assert len(client.get(DATASET, limit=100)) == 30  # answered before the insert
    assert len(client.get(DATASET, limit=100)) == 31


def test_fault_adjust_makes_one_days_grouped_count_lie(soda: SodaStandIn, client: Socrata) -> None:
    """A grouped count off by 2 for one day; the day's records and a plain count are not."""
    soda.add_fault(Fault(adjust={"n": 2}, adjust_where={"day": "2024-05-03"}, grouped=True))
    select = "date_trunc_ymd(created_date) AS day, count(*) AS n"
    days = client.get(DATASET, select=select, group="day", order="day", limit=5)
    assert [(row["day"][:10], row["n"]) for row in days[1:4]] == [
        ("2024-05-02", "2"),
        ("2024-05-03", "3"),  # 1 record, 2 more
        ("2024-05-04", "1"),
    ]
    assert client.get(DATASET, select="count(*) AS n") == [{"n": "30"}]  # not grouped
    assert len(client.get(DATASET, where="created_date < '2024-05-04'")) == 5


def test_fault_body_on_every_query_but_the_grouped_one(soda: SodaStandIn, client: Socrata) -> None:
    soda.add_fault(Fault(body="[]", grouped=False, times=None))
    assert client.get(DATASET) == [] and client.get(DATASET, select="count(*) AS n") == []
    select = "date_trunc_ymd(created_date) AS day, count(*) AS n"
    assert len(client.get(DATASET, select=select, group="day")) == 28


def test_fault_needs_an_effect() -> None:
    with pytest.raises(ValueError):
        Fault()


# ---------------------------------------------------------------------------------------------
# Writes


def test_put_with_key_replaces_and_bumps_updated_at(soda: SodaStandIn, client: Socrata) -> None:
    before = {r["unique_key"]: r for r in soda.records(DATASET)}
    watermark = max(r[":updated_at"] for r in before.values())
    soda.put(
        DATASET, [{"unique_key": 5, "status": "Closed", "closed_date": None}], key="unique_key"
    )
    soda.put(DATASET, [{"unique_key": "31", "status": "Open"}], key="unique_key")
    after = {r["unique_key"]: r for r in soda.records(DATASET)}
    assert len(after) == 31
    changed = after["5"]
    assert changed[":id"] == before["5"][":id"]
    assert changed[":created_at"] == before["5"][":created_at"]
    assert changed[":updated_at"] > before["5"][":updated_at"]
    assert after["31"][":updated_at"] > changed[":updated_at"]  # strictly increasing writes
    assert "closed_date" not in changed and changed["status"] == "Closed"
    since = client.get(DATASET, where=f":updated_at > '{watermark}'", order=":updated_at")
    assert keys(since) == [5, 31]
    assert soda.delete(DATASET, "unique_key", ["5", "31", "999"]) == 2
    assert len(soda.records(DATASET)) == 29


def test_rapid_writes_get_distinct_increasing_stamps(soda: SodaStandIn) -> None:
    for i in range(20):
        soda.put("burst-0001", [{"n": str(i)}])
    stamps = [r[":updated_at"] for r in soda.records("burst-0001")]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20


def test_admin_http_api_round_trip(soda: SodaStandIn, client: Socrata) -> None:
    admin = f"{soda.base_url}/_standin"
    url = f"{admin}/datasets/adm-0001"
    records = [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}, {"k": "c", "v": "10"}]
    assert requests.post(f"{url}/columns", json={"v": "number"}, timeout=5).ok
    assert requests.post(f"{url}/records", json=records, timeout=5).json()["count"] == 3
    replaced = requests.post(f"{url}/records?key=k", json=[{"k": "a", "v": "5"}], timeout=5)
    assert replaced.ok
    rows = client.get("adm-0001", order="v")
    assert [(r["k"], r["v"]) for r in rows] == [("b", "2"), ("a", "5"), ("c", "10")]
    deleted = requests.delete(f"{url}/records", params={"key": "k", "values": "a,b"}, timeout=5)
    assert deleted.json() == {"deleted": 2}
    health = requests.get(f"{admin}/health", timeout=5).json()
    assert health["status"] == "ok" and health["datasets"]["adm-0001"] == 1
    assert requests.post(f"{admin}/faults", json={"status": 503, "times": None}, timeout=5).ok
    for _ in range(2):
        with pytest.raises(requests.HTTPError):
            client.get("adm-0001")
    assert requests.delete(f"{admin}/faults", timeout=5).ok
    assert client.get("adm-0001") == [{"k": "c", "v": "10"}]
    bad = requests.post(f"{admin}/faults", json={"colour": "red"}, timeout=5)
    assert bad.status_code == 400
    log = requests.get(f"{admin}/requests", timeout=5).json()
    assert [entry["status"] for entry in log] == [200, 503, 503, 200]
    assert requests.delete(url, timeout=5).ok
    with pytest.raises(requests.HTTPError, match="404"):
        client.get("adm-0001")


# ---------------------------------------------------------------------------------------------
# App token and logging


def test_app_token_is_recorded_but_never_logged(
    soda: SodaStandIn, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="citypulse_dev.standin")
    make_client().get(DATASET, limit=1)
    make_client(token=None).get(DATASET, limit=1)
    query_token = requests.get(
        f"{soda.base_url}/resource/{DATASET}.json",
        params={"$limit": "1", "$$app_token": TOKEN},
        timeout=5,
    )
    assert query_token.ok
    assert [r.app_token_present for r in soda.requests_log] == [True, False, True]
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    assert soda.requests_log[0].app_token_sha256 == fingerprint
    assert "$$app_token" not in soda.requests_log[2].params
    assert any(f"/resource/{DATASET}.json" in message for message in caplog.messages)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(soda.requests_log)


# ---------------------------------------------------------------------------------------------
# Command line and loading


def test_load_ndjson_with_key(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in sample_records(5)) + "\n\n")
    server = SodaStandIn()
    assert load_ndjson(server, f"{path}:ld-0001:unique_key") == 5
    assert load_ndjson(server, f"{path}:ld-0001:unique_key") == 5
    assert len(server.records("ld-0001")) == 5  # the second load replaced by key


def test_main_serves_in_the_foreground(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in sample_records(3)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    command = [sys.executable, "-m", "citypulse_dev.standin.server", "--port", "0"]
    command += ["--load", f"{path}:cli-0001:unique_key", "--declare", "cli-0001:unique_key=number"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        base_url = _wait_for_url(proc)
        health = requests.get(f"{base_url}/_standin/health", timeout=5).json()
        assert health["datasets"] == {"cli-0001": 3}
        rows = requests.get(f"{base_url}/resource/cli-0001.json?$order=unique_key", timeout=5)
        assert [r["unique_key"] for r in rows.json()] == ["1", "2", "3"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return match.group(1)
        if not line and proc.poll() is not None:
            break
    raise AssertionError("the stand-in did not report its URL")


# ---------------------------------------------------------------------------------------------
# The SoQL module on its own


def test_soql_precedence_and_three_valued_logic() -> None:
    schema = soql.Schema("ds", {"a", "b"}, {"a": "number"})
    rows = [{"a": "1", "b": "x"}, {"a": "2"}, {"a": "3", "b": "y"}]

    def run(where: str) -> list[str]:
        return [r["a"] for r in soql.execute(rows, {"$where": where, "$order": "a"}, schema)]

    assert run("a = 1 OR a = 3 AND b = 'x'") == ["1"]  # AND binds tighter than OR
    assert run("(a = 1 OR a = 3) AND b = 'y'") == ["3"]
    assert run("b != 'x'") == ["3"]  # the row without b is neither equal nor unequal
    assert run("A >= 2 aNd b IS NULL") == ["2"]  # keywords and names are case-insensitive


def test_soql_error_positions_point_at_the_problem() -> None:
    schema = soql.Schema("ds", {"a"})
    with pytest.raises(soql.SoqlError) as caught:
        soql.compile_query({"$where": "a = 'x'\n  AND zz = 'y'"}, schema)
    assert caught.value.data["position"] == {"row": 2, "column": 7, "line": "  AND zz = 'y'"}
    with pytest.raises(soql.SoqlError, match="Unrecognized parameter"):
        soql.compile_query({"$bogus": "1"}, schema)


# ---------------------------------------------------------------------------------------------
# SODA3: one SoQL statement per request, answered by the same engine


def soda3(soda: SodaStandIn, body: Any, token: str | None = TOKEN) -> requests.Response:
    headers = {"X-App-Token": token} if token else {}
    url = f"{soda.base_url}/api/v3/views/{DATASET}/query.json"
    return requests.post(url, json=body, headers=headers, timeout=5)


def test_soda3_answers_a_statement_like_the_same_soda2_query(
    soda: SodaStandIn, client: Socrata
) -> None:
    statement = "SELECT :*, * WHERE status = 'Open' AND unique_key > 3 ORDER BY :id LIMIT 4"
    answer = soda3(soda, {"query": statement, "page": {"pageNumber": 1, "pageSize": 4},
                          "includeSynthetic": True})  # fmt: skip
    assert answer.status_code == 200
    same = client.get(DATASET, select=":*, *", where="status = 'Open' AND unique_key > 3",
                      order=":id", limit=4, exclude_system_fields=False)  # fmt: skip
    assert answer.json() == same and len(same) == 4 and ":id" in same[0]
    day = "date_trunc_ymd(created_date) AS day, count(*) AS n"
    grouped = soda3(soda, {"query": f"SELECT {day} GROUP BY day ORDER BY day"})
    assert grouped.json() == client.get(DATASET, select=day, group="day", order="day")
    record = soda.requests_log[0]
    assert (record.method, record.path, record.params["query"]) == (
        "POST",
        f"/api/v3/views/{DATASET}/query.json",
        statement,
    )
    assert record.params["$where"] == "status = 'Open' AND unique_key > 3"


def test_soda3_pages_within_the_statements_limit(soda: SodaStandIn) -> None:
    body = {"query": "SELECT unique_key ORDER BY unique_key LIMIT 5", "page": {"pageSize": 2}}
    pages = [
        soda3(soda, {**body, "page": {"pageNumber": n, "pageSize": 2}}).json() for n in (1, 2, 3, 4)
    ]
    assert [keys(p) for p in pages] == [[1, 2], [3, 4], [5], []]
    via_get = requests.get(
        f"{soda.base_url}/api/v3/views/{DATASET}/query.json",
        params={
            "query": "SELECT unique_key ORDER BY unique_key",
            "pageNumber": "3",
            "pageSize": "10",
            "app_token": TOKEN,
        },
        timeout=5,
    )
    assert keys(via_get.json()) == list(range(21, 31))
    assert (
        soda.requests_log[-1].app_token_present and "app_token" not in soda.requests_log[-1].params
    )


def test_soda3_needs_a_token_and_a_statement(soda: SodaStandIn) -> None:
    refused = soda3(soda, {"query": "SELECT *"}, token=None)
    assert refused.status_code == 401 and refused.json()["code"] == "authentication_required"
    assert soda3(soda, {"query": "SELECT *"}).status_code == 200  # same connection reused fine
    for bad in ({}, {"query": "FROM x"}, {"query": "SELECT *", "page": {"pageNumber": 0}}):
        assert soda3(soda, bad).status_code == 400
    assert soda3(soda, {"query": "SELECT nope"}).json()["code"] == soql.NO_SUCH_COLUMN


def test_settings_switch_the_soda3_shape_and_retire_soda2(
    soda: SodaStandIn, client: Socrata
) -> None:
    admin = f"{soda.base_url}/_standin/settings"
    assert requests.get(admin, timeout=5).json() == {"soda3_shape": "rows", "soda2": "served"}
    changed = requests.post(admin, json={"soda3_shape": "data", "soda2": "retired"}, timeout=5)
    assert changed.json() == {"soda3_shape": "data", "soda2": "retired"}
    answer = soda3(soda, {"query": "SELECT count(*) AS n"}).json()
    assert answer == {"data": [{"n": "30"}]}
    with pytest.raises(requests.HTTPError) as caught:
        client.get(DATASET)
    assert response_of(caught).status_code == 410
    assert "/api/v3/views/" in response_of(caught).json()["message"]
    assert requests.post(admin, json={"soda2": "gone"}, timeout=5).status_code == 400


def test_faults_hit_soda3_queries_as_they_hit_soda2(soda: SodaStandIn) -> None:
    soda.add_fault(Fault(status=503, aggregate=True, times=1))
    assert soda3(soda, {"query": "SELECT unique_key LIMIT 1"}).status_code == 200
    assert soda3(soda, {"query": "SELECT count(*) AS n"}).status_code == 503
    soda.add_fault(Fault(short=1, times=1))
    assert len(soda3(soda, {"query": "SELECT * LIMIT 5"}).json()) == 1
