"""The Socrata client (citypulse.portal.client) against the SODA stand-in over HTTP: the app
token never leaves its portal's origin (scheme, host, port), whatever a redirect says, and an
answer that is not what a query asks for (a count without its row) is an error, never a zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from citypulse.exceptions import PortalError
from citypulse.portal.client import RetryPolicy, SocrataClient, socrata_client
from helpers import HeaderRecorder, by_id, fresh_dataset

DAY = date(2025, 4, 2)
TOKEN = "tok-b3JpZ2luLWJvdW5kLXRva2Vu"
POLICY = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=1, timeout_seconds=2)


@pytest.fixture(params=["soda2", "soda3"])
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each client test runs through both Socrata APIs."""
    monkeypatch.setenv("CITYPULSE_SODA_API", request.param)
    return str(request.param)


@pytest.fixture
def nyc(
    standin: Any, contracts: list[Any], monkeypatch: pytest.MonkeyPatch, api: str
) -> Iterator[Any]:
    from citypulse_dev.generator import generate_day

    contract = by_id(contracts, "nyc_311")
    fresh_dataset(standin, contract)
    standin.put(contract.dataset_id, generate_day(contract, DAY, seed=5, records=30).records)
    standin.clear_faults()
    standin.requests_log.clear()
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    yield contract
    standin.clear_faults()
    standin.configure(soda3_shape="rows", soda2="served")


@pytest.fixture
def recorder() -> Iterator[HeaderRecorder]:
    server = HeaderRecorder()
    yield server
    server.close()


def client_for(contract: Any, waits: list[float] | None = None) -> SocrataClient:
    sleep = waits.append if waits is not None else (lambda _: None)
    return SocrataClient(contract, policy=POLICY, sleep=sleep)


# --- the token stays with its portal's origin -------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("https://data.cityofchicago.org", "https://data.cityofchicago.org:443/resource/x", True),
        ("http://127.0.0.1:8765/a", "HTTP://127.0.0.1:8765/b?q=1", True),
        ("https://Data.CityOfChicago.org", "https://data.cityofchicago.org", True),
        ("http://h", "http://h:80", True),
        ("https://h", "http://h", False),  # a downgrade
        ("https://h", "http://h:443", False),
        ("https://h", "https://h:8443", False),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8766", False),
        ("http://127.0.0.1:8765", "http://localhost:8765", False),
        ("https://h", "https://h:notaport", False),
    ],
)
def test_an_origin_is_scheme_host_and_port_with_default_ports_spelled_out(
    one: str, other: str, same: bool
) -> None:
    from citypulse.portal.http import Origin

    assert (Origin.of(one) == Origin.of(other)) is same
    assert str(Origin.of("https://Data.CityOfChicago.org")) == "https://data.cityofchicago.org:443"


def test_a_redirect_to_the_same_host_on_another_port_is_refused_and_the_token_stays_home(
    standin: Any, nyc: Any, recorder: HeaderRecorder
) -> None:
    from citypulse_dev.standin.server import Fault

    elsewhere = f"http://127.0.0.1:{recorder.port}/resource/{nyc.dataset_id}.json"
    standin.add_fault(Fault(redirect=elsewhere, times=None))
    waits: list[float] = []
    with client_for(nyc, waits) as client, pytest.raises(PortalError) as caught:
        client.count("1=1", "the whole dataset")
    message = str(caught.value)
    assert recorder.requests == []  # nothing, token or not, went to the other server
    assert not caught.value.transient and waits == []  # refused at once, never retried
    assert f"http://127.0.0.1:{standin.port}" in message  # both origins named
    assert f"http://127.0.0.1:{recorder.port}" in message
    assert TOKEN not in message


def test_a_downgrade_to_plain_http_never_leaves_the_session(
    contracts: list[Any], recorder: HeaderRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A portal served over https at 127.0.0.1:<port>; a redirect's target is sent by the same
    # session as any request (requests' `resolve_redirects` -> `Session.send`), so asking the
    # session for the http URL is what following a 302 to it would do.
    monkeypatch.setenv("SOCRATA_BASE_URL", f"https://127.0.0.1:{recorder.port}")
    client = socrata_client(by_id(contracts, "nyc_311"), TOKEN, 2)
    with pytest.raises(requests.RequestException) as caught:
        client.session.get(f"http://127.0.0.1:{recorder.port}/resource/x.json", timeout=2)
    client.close()
    assert recorder.requests == []  # the token was not sent in the clear
    message = str(caught.value)
    assert f"https://127.0.0.1:{recorder.port}" in message
    assert f"http://127.0.0.1:{recorder.port}" in message
    assert "another origin" in message


def test_a_live_portal_refuses_every_other_origin_before_any_connection(
    contracts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOCRATA_BASE_URL", raising=False)
    client = socrata_client(by_id(contracts, "chicago_crime"), TOKEN, 2)
    for url in (
        "http://data.cityofchicago.org/resource/x.json",  # downgrade
        "https://data.cityofchicago.org:8443/resource/x.json",  # another port
        "https://evil.example/resource/x.json",  # another host
    ):
        with pytest.raises(requests.RequestException, match="another origin"):
            client.session.get(url, timeout=2)
    client.close()


# --- an answer that is not a count is not zero ------------------------------------------------


@pytest.mark.parametrize("body", ["[]", "[{}]", '[{"n": "many"}]', '[{"n": "1"}, {"n": "2"}]'])
def test_a_count_answered_without_its_number_is_an_error_not_zero(
    standin: Any, nyc: Any, body: str
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(body=body, aggregate=True, times=None, dataset_id=nyc.dataset_id))
    with client_for(nyc) as client, pytest.raises(PortalError) as caught:
        client.count("1=1", "the whole dataset")
    message = str(caught.value)
    assert caught.value.transient  # a portal hiccup: Airflow tries the task again later
    assert "still failing after 3 attempts" in message and "count" in message


def test_a_count_answered_badly_once_is_asked_again(standin: Any, nyc: Any) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(body="[]", aggregate=True, times=1, dataset_id=nyc.dataset_id))
    with client_for(nyc) as client:
        assert client.count("1=1", "the whole dataset") == 30
        assert client.retries == 1


# --- view metadata ----------------------------------------------------------------------------


def test_metadata_reads_the_views_rows_updated_at_columns_and_row_identifier(
    standin: Any, nyc: Any
) -> None:
    from citypulse.portal.metadata import ViewMetadata

    with client_for(nyc) as client:
        meta = client.metadata()
    assert isinstance(meta, ViewMetadata)
    newest = max(r[":updated_at"] for r in standin.records(nyc.dataset_id))
    assert meta.rows_updated_at == datetime.fromisoformat(newest).replace(microsecond=0, tzinfo=UTC)
    assert meta.rows_updated_at is not None and meta.rows_updated_at.tzinfo == UTC
    assert meta.dataset_id == nyc.dataset_id
    assert meta.row_identifier == nyc.key_column.wire_name == "unique_key"
    created = meta.column("created_date")
    assert created is not None and created.data_type == "calendar_date"
    assert created.stats is not None and created.stats.non_null == 30
    key = meta.column("unique_key")
    assert key is not None and key.stats is not None and key.stats.cardinality == 30
    wire = {c.wire_name for c in nyc.columns if not c.wire_name.startswith(":")}
    assert {c.field_name for c in meta.data_columns} >= wire
    assert not any(c.system for c in meta.data_columns)
    request = next(r for r in standin.requests_log if r.path.startswith("/api/views/"))
    assert request.app_token_present  # asked like a query, with the token


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"body": "<html>maintenance</html>", "content_type": "text/html"},
        {"body": "[]"},  # JSON, but not an object
        {"body": '{"id": "erm2-nwe9", "rowsUpdatedAt": "yesterday"}'},
        {"drop": True},
    ],
    ids=["503", "html", "list", "bad-stamp", "dropped"],
)
def test_a_bad_metadata_answer_is_retried(standin: Any, nyc: Any, fault: dict[str, Any]) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(**fault, metadata=True, times=1))
    waits: list[float] = []
    with client_for(nyc, waits) as client:
        assert client.metadata().dataset_id == nyc.dataset_id
        assert client.retries == len(waits) == 1
    standin.add_fault(Fault(**fault, metadata=True, times=None))
    with client_for(nyc) as client, pytest.raises(PortalError) as caught:
        client.metadata()
    assert caught.value.transient and "view metadata" in str(caught.value)
    assert "still failing after 3 attempts" in str(caught.value)


def test_metadata_of_an_unknown_view_fails_at_once(standin: Any, nyc: Any) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(status=404, message="Cannot find view", metadata=True, times=None))
    waits: list[float] = []
    with client_for(nyc, waits) as client, pytest.raises(PortalError) as caught:
        client.metadata()
    assert not caught.value.transient and waits == []
    assert "Cannot find view" in str(caught.value)


def test_metadata_is_never_asked_of_another_origin(
    standin: Any, nyc: Any, recorder: HeaderRecorder
) -> None:
    from citypulse_dev.standin.server import Fault

    elsewhere = f"http://127.0.0.1:{recorder.port}/api/views/{nyc.dataset_id}.json"
    standin.add_fault(Fault(redirect=elsewhere, metadata=True, times=None))
    with client_for(nyc) as client, pytest.raises(PortalError, match="another origin"):
        client.metadata()
    assert recorder.requests == []


def test_a_lying_view_is_read_as_it_says(standin: Any, nyc: Any) -> None:
    standin.lie_in_view(nyc.dataset_id, {"rowsUpdatedAt": 86_400, "rowIdentifierColumnId": None})
    try:
        with client_for(nyc) as client:
            meta = client.metadata()
    finally:
        standin.lie_in_view(nyc.dataset_id, {})
    assert meta.rows_updated_at == datetime(1970, 1, 2, tzinfo=UTC)
    assert meta.row_identifier is None


# --- SODA 2.1 and SODA3 -----------------------------------------------------------------------

WINDOW = "unique_key IS NOT NULL"


def queries(standin: Any) -> list[Any]:
    return [r for r in standin.requests_log if not r.path.startswith("/api/views/")]


@pytest.mark.parametrize("api", ["soda3"], indirect=True)
@pytest.mark.parametrize("shape", ["rows", "data"])
def test_soda3_reads_by_keyset_statements_in_either_answer_shape(
    standin: Any, nyc: Any, shape: str
) -> None:
    standin.configure(soda3_shape=shape, soda2="retired")
    with client_for(nyc) as client:
        pages = list(client.keyset(WINDOW, "window", 12))
        assert client.count(WINDOW, "window") == 30
        assert client.newest("created_date", "changes") is not None
        days = client.days("created_date", None)
    assert [len(p) for p in pages] == [12, 12, 6]  # and an empty page, asked, ends the read
    ids = [r[":id"] for p in pages for r in p]
    assert len(set(ids)) == 30 and ids == sorted(ids)
    assert [d["n"] for d in days] == ["30"]
    sent = queries(standin)
    assert all(r.path == f"/api/v3/views/{nyc.dataset_id}/query.json" for r in sent)
    assert all(r.method == "POST" and r.app_token_present and r.status == 200 for r in sent)
    statements = [r.params["query"] for r in sent]
    assert statements[:4] == [
        f"SELECT :*, * WHERE {WINDOW} ORDER BY :id LIMIT 12",
        f"SELECT :*, * WHERE ({WINDOW}) AND :id > '{ids[11]}' ORDER BY :id LIMIT 12",
        f"SELECT :*, * WHERE ({WINDOW}) AND :id > '{ids[23]}' ORDER BY :id LIMIT 12",
        f"SELECT :*, * WHERE ({WINDOW}) AND :id > '{ids[29]}' ORDER BY :id LIMIT 12",
    ]
    assert statements[4:] == [
        f"SELECT count(*) AS n WHERE {WINDOW}",
        "SELECT max(created_date) AS newest",
        "SELECT date_trunc_ymd(created_date) AS day, count(*) AS n GROUP BY day ORDER BY day "
        "LIMIT 50000",
    ]


@pytest.mark.parametrize("api", ["soda3"], indirect=True)
@pytest.mark.parametrize("body", ['{"rows": []}', '{"data": [[1, 2]]}', '"data"'])
def test_a_soda3_answer_in_neither_shape_is_retried_then_reported(
    standin: Any, nyc: Any, body: str
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(body=body, aggregate=False, times=None))
    with client_for(nyc) as client, pytest.raises(PortalError) as caught:
        list(client.keyset(WINDOW, "window", 50))
    message = str(caught.value)
    assert caught.value.transient and "still failing after 3 attempts" in message
    assert "not a JSON list of records (or an object with a `data` list)" in message


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_terminal_and_says_where_tokens_come_from(
    standin: Any, nyc: Any, api: str, status: int
) -> None:
    from citypulse_dev.standin.server import Fault

    message = f"Invalid app token {TOKEN}"
    standin.add_fault(Fault(status=status, code="unauthorized", message=message, times=None))
    waits: list[float] = []
    with client_for(nyc, waits) as client, pytest.raises(PortalError) as caught:
        client.count(WINDOW, "window")
    text = str(caught.value)
    assert not caught.value.transient and waits == []
    assert f"HTTP {status}" in text and "Invalid app token ***" in text
    assert "`SOCRATA_APP_TOKEN` or the `socrata` connection's password" in text
    assert TOKEN not in text


@pytest.mark.parametrize("api", ["soda2"], indirect=True)
@pytest.mark.parametrize("retired", [410, 404])
def test_a_portal_without_soda2_is_terminal_and_says_to_switch_to_soda3(
    standin: Any, nyc: Any, monkeypatch: pytest.MonkeyPatch, retired: int
) -> None:
    from citypulse_dev.standin.server import Fault

    if retired == 410:
        standin.configure(soda2="retired")
    else:
        standin.add_fault(Fault(status=404, message="Not found", times=None))
    waits: list[float] = []
    with client_for(nyc, waits) as client, pytest.raises(PortalError) as caught:
        client.count(WINDOW, "window")
    text = str(caught.value)
    assert not caught.value.transient and waits == []
    assert f"HTTP {retired}" in text and "CITYPULSE_SODA_API=soda3" in text
    standin.clear_faults()
    monkeypatch.setenv("CITYPULSE_SODA_API", "soda3")  # what the message says to do
    with client_for(nyc) as client:
        assert client.count(WINDOW, "window") == 30


def test_auto_reads_through_soda3_with_a_token_and_soda2_with_a_warning_without(
    standin: Any, nyc: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("CITYPULSE_SODA_API")
    with client_for(nyc) as client:
        assert client.api == "soda3"
    monkeypatch.delenv("SOCRATA_APP_TOKEN")
    with caplog.at_level("WARNING"), client_for(nyc) as client:
        assert client.api == "soda2"
        assert client.count(WINDOW, "window") == 30
    assert "deprecation" in caplog.text and "SOCRATA_APP_TOKEN" in caplog.text
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    monkeypatch.setenv("CITYPULSE_SODA_API", "soda3")
    with client_for(nyc.model_copy(update={"api": "soda2"})) as client:
        assert client.api == "soda2"  # the contract's `api:` wins over the setting


def test_soda3_without_a_token_or_an_unknown_api_fails_before_any_request(
    standin: Any, nyc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYPULSE_SODA_API", "soda3")
    monkeypatch.delenv("SOCRATA_APP_TOKEN")
    with pytest.raises(PortalError, match="SODA3 requires an app token") as caught:
        client_for(nyc)
    assert "`SOCRATA_APP_TOKEN` or the `socrata` connection's password" in str(caught.value)
    monkeypatch.setenv("CITYPULSE_SODA_API", "soda4")
    with pytest.raises(PortalError, match="CITYPULSE_SODA_API=soda4 is not one of"):
        client_for(nyc)
    assert standin.requests_log == []


def test_a_json_number_too_long_for_python_is_kept_as_its_digits(
    standin: Any, nyc: Any, api: str
) -> None:
    """A hostile portal sends a 5,000-digit JSON number (Python refuses to convert more than
    4,300 digits): the page is read, the value kept as its digits, and typing quarantines it
    naming its column (tests/test_typing_rules.py) instead of the request failing the day."""
    from citypulse_dev.standin.server import Fault

    digits = "9" * 5000
    body = f'[{{":id": "row-1", "unique_key": {digits}, "agency": "NYPD"}}]'
    standin.add_fault(Fault(body=body, aggregate=False, times=1, dataset_id=nyc.dataset_id))
    with client_for(nyc) as client:
        page = next(client.keyset(WINDOW, "window", 50))
        assert client.retries == 0
    assert page == [{":id": "row-1", "unique_key": digits, "agency": "NYPD"}]
