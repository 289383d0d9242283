"""User story: the extract reads a window from a portal reliably and proves it complete. It
pages by row id and checks the records read against the portal's own count (a short page or
a record published while paging is read again, and a window that never agrees fails with
both counts), retries transient failures (honouring Retry-After), fails fast with the
portal's own words on a bad query, never leaves a partial part behind, writes the records in
parts of a bounded size, and sends the app token without ever logging it.

Driven through the real `sodapy` client against the SODA stand-in over HTTP.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from citypulse.exceptions import PortalError
from citypulse.pipeline.extract import capture_bound, changes_where, extract_window, window_where
from citypulse.pipeline.windows import window_for_dates
from citypulse.portal.client import RetryPolicy, socrata_client
from citypulse.storage import StorageRoot

DAY = date(2025, 3, 9)  # spring-forward day in every city: a 23-hour window
POLICY = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=5, timeout_seconds=1)


@pytest.fixture
def nyc(standin: Any, contracts: list[Any]) -> Any:
    from citypulse_dev.generator import generate_day

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    standin.clear(contract.dataset_id)
    for day in (date(2025, 3, 8), DAY, date(2025, 3, 10)):
        standin.put(contract.dataset_id, generate_day(contract, day, seed=3, records=120).records)
    standin.clear_faults()
    standin.requests_log.clear()
    yield contract
    standin.clear_faults()


def run(contract: Any, tmp_path: Path, **kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    window = window_for_dates(DAY.isoformat(), DAY.isoformat(), contract.timezone)
    root = StorageRoot(tmp_path.as_uri())
    result = extract_window(
        contract, window, root, "extract", policy=POLICY, page_size=50, **kwargs
    )
    records = [
        json.loads(line)
        for part in result.parts
        for line in (tmp_path / part.key).read_text().splitlines()
    ]
    return result, records


def soda_requests(standin: Any) -> list[Any]:
    return [r for r in standin.requests_log if r.path.startswith("/resource/")]


def test_pages_cover_the_window_exactly_once(nyc: Any, standin: Any, tmp_path: Path) -> None:
    result, records = run(nyc, tmp_path)
    assert result.rows == len(records) == result.portal_rows == 120
    assert result.pages == 3  # 50 + 50 + 20
    keys = [r["unique_key"] for r in records]
    assert len(set(keys)) == 120
    assert all(r["created_date"].startswith("2025-03-09") for r in records)
    window = (
        "created_date >= '2025-03-09T00:00:00.000' AND created_date < '2025-03-10T00:00:00.000'"
    )
    pages, count = soda_requests(standin)[:3], soda_requests(standin)[3]
    ids = [r[":id"] for r in records]
    assert ids == sorted(ids)  # paged by row id, each page after the last id read
    assert [r.params["$where"] for r in pages] == [
        window,
        f"({window}) AND :id > '{ids[49]}'",
        f"({window}) AND :id > '{ids[99]}'",
    ]
    assert {r.params["$order"] for r in pages} == {":id"}
    assert not any("$offset" in r.params for r in pages)
    assert (count.params["$select"], count.params["$where"]) == ("count(*) AS n", window)


def test_a_short_page_is_read_again_until_it_equals_the_portals_count(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.standin.server import Fault

    # A proxy cuts the second page to 10 rows: the client takes it for the last page.
    standin.add_fault(Fault(short=10, skip=1, aggregate=False, dataset_id=nyc.dataset_id))
    result, records = run(nyc, tmp_path)
    assert result.rows == result.portal_rows == len({r["unique_key"] for r in records}) == 120
    counts = [r for r in soda_requests(standin) if "count(*)" in r.params.get("$select", "")]
    assert len(counts) == 2  # the first read counted 60 of 120


def test_a_record_published_while_paging_is_not_lost_or_repeated(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.generator import generate_day
    from citypulse_dev.standin.server import Fault

    late = generate_day(nyc, DAY, seed=99, records=3).records
    late = [{**r, "unique_key": str(70_000_000 + i)} for i, r in enumerate(late)]
    # The portal publishes 3 records of the window after the first page went out.
    standin.add_fault(Fault(insert=tuple(late), skip=0, aggregate=False))
    result, records = run(nyc, tmp_path)
    keys = [r["unique_key"] for r in records]
    assert result.rows == result.portal_rows == len(set(keys)) == len(keys) == 123
    assert {r["unique_key"] for r in late} <= set(keys)


def test_a_window_that_never_agrees_with_the_portals_count_fails_with_both(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(short=30, aggregate=False, times=None, dataset_id=nyc.dataset_id))
    with pytest.raises(PortalError) as caught:
        run(nyc, tmp_path)
    message = str(caught.value)
    assert "the portal counts 120 records" in message and "but 30 were read" in message
    assert "nothing of this window was loaded" in message
    assert caught.value.transient  # Airflow tries the task again later
    assert list(tmp_path.iterdir()) == []  # no part left behind


def test_changes_of_any_age_are_read_up_to_the_portals_newest_change(contracts: list[Any]) -> None:
    chicago = next(c for c in contracts if c.dag_id == "chicago_crime")
    montgomery = next(c for c in contracts if c.dag_id == "montgomery_traffic")
    window = window_for_dates("2025-01-02", "2025-01-02", chicago.timezone)
    wm, upper = "2025-01-01T06:00:00.000", "2025-01-03T05:59:59.000"
    assert changes_where(chicago, window, wm, upper) == (
        f"updated_on >= '{wm}' AND updated_on <= '{upper}' AND date < '2025-01-02T00:00:00.000'"
    )
    # A portal that re-stamps every row keeps a lookback bound (the audit does the rest).
    assert changes_where(montgomery, window, wm, upper).endswith(
        "AND date_of_stop >= '2024-12-26T00:00:00.000'"
    )
    with pytest.raises(ValueError, match="not a Socrata timestamp"):
        changes_where(chicago, window, "2025-01-01' OR 1=1 --", upper)


def test_the_next_watermark_never_passes_the_runs_start(contracts: list[Any]) -> None:
    from datetime import UTC, datetime

    from helpers import by_id

    started = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    chicago = by_id(contracts, "chicago_crime")  # updated_on: floating, Chicago wall time
    assert capture_bound(chicago, "2202-01-01T00:00:00.000", started) == "2026-07-01T07:00:00.000"
    assert capture_bound(chicago, "2026-07-01T06:59:59.000", started) == "2026-07-01T06:59:59.000"
    nyc = by_id(contracts, "nyc_311")  # :updated_at: timestamptz, UTC
    assert capture_bound(nyc, "2202-01-01T00:00:00.000Z", started) == "2026-07-01T12:00:00.000Z"
    assert capture_bound(nyc, "2026-07-01T11:00:00.5", started) == "2026-07-01T11:00:00.5"
    # The portal's last data change bounds it too (it has whole seconds: one more is allowed).
    published = datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)
    bound = capture_bound(nyc, "2202-01-01T00:00:00.000Z", started, published)
    assert bound == "2026-07-01T10:00:01.000Z"
    assert capture_bound(nyc, "2026-07-01T10:00:00.250Z", started, published) == (
        "2026-07-01T10:00:00.250Z"
    )


def test_records_are_written_in_parts_of_a_bounded_size(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    result, records = run(nyc, tmp_path, part_rows=45)
    assert [(part.key, part.rows) for part in result.parts] == [
        ("extract/window/part-00000.ndjson", 45),
        ("extract/window/part-00001.ndjson", 45),
        ("extract/window/part-00002.ndjson", 30),
    ]
    assert len({r["unique_key"] for r in records}) == result.rows == 120
    # A retried extract starts from nothing: no part of the earlier try survives.
    again, _ = run(nyc, tmp_path, part_rows=200)
    assert [part.key for part in again.parts] == ["extract/window/part-00000.ndjson"]
    assert sorted(p.name for p in (tmp_path / "extract" / "window").iterdir()) == [
        "part-00000.ndjson"
    ]


def test_a_window_selects_its_event_time_range(contracts: list[Any]) -> None:
    montgomery = next(c for c in contracts if c.dag_id == "montgomery_traffic")
    window = window_for_dates("2025-01-01", "2025-01-01", montgomery.timezone)
    assert window_where(montgomery, window) == (
        "date_of_stop >= '2025-01-01T00:00:00.000' AND date_of_stop < '2025-01-02T00:00:00.000'"
    )


def test_429_is_retried_after_the_portals_retry_after(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(status=429, retry_after=2, times=1))
    waits: list[float] = []
    result, records = run(nyc, tmp_path, sleep=waits.append)
    assert len(records) == 120 and result.retries == 1
    assert waits == [2.0]
    assert [r.status for r in soda_requests(standin)][:2] == [429, 200]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "times": 2},
        {"status": 500, "times": 1},
        {"delay": 2.5, "times": 1},  # past the 1 s client timeout
        {"drop": True, "skip": 1, "times": 1},  # connection dropped mid-paging
    ],
    ids=["503", "500", "timeout", "dropped-mid-paging"],
)
def test_transient_faults_are_retried_and_nothing_repeats(
    nyc: Any, standin: Any, tmp_path: Path, fault: dict[str, Any]
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(**fault))
    waits: list[float] = []
    result, records = run(nyc, tmp_path, sleep=waits.append)
    assert result.rows == 120 and len({r["unique_key"] for r in records}) == 120
    assert result.retries == fault["times"] == len(waits)
    assert all(0 < w <= POLICY.max_backoff_seconds for w in waits)


def test_a_bad_query_fails_fast_with_the_portals_message(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(
        Fault(status=400, code="query.soql.no-such-column", message="No such column: created")
    )
    with pytest.raises(PortalError) as caught:
        run(nyc, tmp_path, sleep=lambda _: None)
    message = str(caught.value)
    assert "refused the query" in message
    assert "query.soql.no-such-column" in message and "No such column: created" in message
    assert len(soda_requests(standin)) == 1
    assert list(tmp_path.iterdir()) == []  # no partial extract left behind


def test_exhausted_retries_fail_clearly_and_leave_no_file(
    nyc: Any, standin: Any, tmp_path: Path
) -> None:
    from citypulse_dev.standin.server import Fault

    standin.add_fault(Fault(status=503, skip=1, times=None))
    with pytest.raises(PortalError) as caught:
        run(nyc, tmp_path, sleep=lambda _: None)
    message = str(caught.value)
    assert "still failing after 3 attempts" in message and "503" in message
    assert "nothing of this window was loaded" in message
    assert list(tmp_path.iterdir()) == []


def test_app_token_is_sent_but_never_logged(
    nyc: Any,
    standin: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from citypulse_dev.standin.server import Fault

    token = "tok-Q2l0eVB1bHNlU2VjcmV0"
    monkeypatch.setenv("SOCRATA_APP_TOKEN", token)
    standin.add_fault(Fault(status=503, times=1))
    caplog.set_level(logging.DEBUG)
    run(nyc, tmp_path, sleep=lambda _: None)
    assert all(r.app_token_present for r in soda_requests(standin))
    assert token not in caplog.text
    assert token not in (tmp_path / "extract" / "window" / "part-00000.ndjson").read_text()


def test_live_and_stand_in_clients_differ_only_in_base_url(
    contracts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = next(c for c in contracts if c.dag_id == "chicago_crime")
    monkeypatch.delenv("SOCRATA_BASE_URL", raising=False)
    live = socrata_client(contract, "t", 5)
    monkeypatch.setenv("SOCRATA_BASE_URL", "http://127.0.0.1:8765")
    local = socrata_client(contract, "t", 5)
    assert (live.uri_prefix, live.domain) == ("https://", "data.cityofchicago.org")
    assert (local.uri_prefix, local.domain) == ("http://", "127.0.0.1:8765")
    assert live.session.headers["X-App-token"] == local.session.headers["X-App-token"] == "t"
    assert live.timeout == local.timeout == 5


def test_a_change_landing_between_the_metadata_and_the_newest_is_no_stamp_from_the_future(
    nyc: Any, standin: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The view metadata is read first (the schema check needs it before any row): when the
    portal changed since, its stale `rowsUpdatedAt` must not clamp the watermark below the
    newest change with a false warning; the portal is asked once more."""
    import requests

    from citypulse_dev.standin.server import Fault

    view = requests.get(f"{standin.base_url}/api/views/{nyc.dataset_id}.json", timeout=10).json()
    stale = {**view, "rowsUpdatedAt": int(view["rowsUpdatedAt"]) - 3600}  # before the last put
    standin.add_fault(Fault(metadata=True, body=json.dumps(stale), times=1))
    with caplog.at_level(logging.WARNING):
        result, _ = run(nyc, tmp_path, incremental=True, watermark="2025-03-01T00:00:00.000")
    newest = max(r[":updated_at"] for r in standin.records(nyc.dataset_id))
    assert result.watermark is not None and result.watermark[:19] == newest[:19]
    assert "from the future" not in caplog.text
