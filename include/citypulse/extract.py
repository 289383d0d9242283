"""Extract: page through a Socrata dataset with `sodapy`, streaming each page to a file.

The live portals and the stand-in differ only in the base URL (`SOCRATA_BASE_URL`) and the
app token. Transient failures (429, 5xx, timeouts, dropped connections) are retried with
exponential backoff honouring Retry-After; any other 4xx fails at once with the portal's
own message. Imported only inside tasks (sodapy, requests).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from citypulse.contracts import Contract
from citypulse.exceptions import PortalError
from citypulse.settings import SOCRATA_APP_TOKEN_ENV, SOCRATA_BASE_URL_ENV, SOCRATA_CONN_ID
from citypulse.windows import FLOATING_FORMAT, Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a page before the task gives up (Airflow then retries the task)."""

    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 120.0
    timeout_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        env = os.environ
        return cls(
            attempts=int(env.get("CITYPULSE_HTTP_ATTEMPTS", cls.attempts)),
            backoff_seconds=float(env.get("CITYPULSE_HTTP_BACKOFF_SECONDS", cls.backoff_seconds)),
            max_backoff_seconds=float(
                env.get("CITYPULSE_HTTP_MAX_BACKOFF_SECONDS", cls.max_backoff_seconds)
            ),
            timeout_seconds=float(env.get("CITYPULSE_HTTP_TIMEOUT_SECONDS", cls.timeout_seconds)),
        )

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt `attempt + 1`: Retry-After if given, else backoff."""
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff_seconds)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        backoff = self.backoff_seconds * (2**attempt)
        return min(backoff, self.max_backoff_seconds) * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class ExtractResult:
    path: Path
    rows: int
    pages: int
    retries: int
    window_rows: int = 0
    change_rows: int = 0


# A watermark is portal data that goes back into SoQL: only a timestamp may pass.
_WATERMARK = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?$")


def app_token() -> str | None:
    """The Socrata app token: connection `socrata` (password, or extra `app_token`), else env."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    token: str | None = None
    try:
        conn = BaseHook.get_connection(SOCRATA_CONN_ID)
        token = conn.password or (conn.extra_dejson or {}).get("app_token")
    except AirflowNotFoundException:
        pass
    token = token or os.environ.get(SOCRATA_APP_TOKEN_ENV) or None
    if token:
        from airflow.sdk.log import mask_secret

        mask_secret(token)
    return token


def socrata_client(contract: Contract, token: str | None, timeout: float) -> Any:
    """A sodapy client for the contract's portal, or for `SOCRATA_BASE_URL` when set."""
    from sodapy import Socrata

    base = os.environ.get(SOCRATA_BASE_URL_ENV, "").strip()
    if base:
        parsed = urlparse(base)
        domain, scheme = parsed.netloc, parsed.scheme or "http"
    else:
        domain, scheme = contract.portal, "https"
    adapter = {"prefix": f"{scheme}://", "adapter": HTTPAdapter()}
    return Socrata(domain, token, session_adapter=adapter, timeout=timeout)


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(
        exc,
        (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            json.JSONDecodeError,
        ),
    )


def _portal_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
            return f"HTTP {response.status_code} {body.get('code', '')}: {body.get('message', '')}"
        except ValueError:
            return f"HTTP {response.status_code}: {response.text[:300]}"
    return f"{type(exc).__name__}: {exc}"


def fetch_page(
    get: Callable[..., list[dict[str, Any]]],
    params: dict[str, Any],
    policy: RetryPolicy,
    describe: str,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[dict[str, Any]], int]:
    """One page, retried while the failure is transient; (rows, retries used)."""
    for attempt in range(policy.attempts):
        try:
            return get(**params), attempt
        except Exception as exc:
            if not _is_transient(exc):
                raise PortalError(
                    f"{describe}: the portal refused the query: {_portal_message(exc)}"
                ) from None
            if attempt + 1 >= policy.attempts:
                raise PortalError(
                    f"{describe}: still failing after {policy.attempts} attempts "
                    f"(last: {_portal_message(exc)}); nothing of this window was loaded",
                    transient=True,
                ) from None
            response = getattr(exc, "response", None)
            retry_after = response.headers.get("Retry-After") if response is not None else None
            wait = policy.delay(attempt, retry_after)
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.1fs",
                describe,
                attempt + 1,
                _portal_message(exc),
                wait,
            )
            sleep(wait)
    raise AssertionError("unreachable")


def query_params(contract: Contract, window: Window) -> dict[str, Any]:
    """The SoQL of a window: the event-time range, in a stable order (event time, key)."""
    key = contract.key_column.wire_name
    params: dict[str, Any] = {
        "where": window.soql(contract.event_column.wire_name),
        "order": f"{contract.event_column.wire_name} ASC, {key} ASC",
    }
    if contract.system_fields:
        params["exclude_system_fields"] = False
    return params


def changes_params(contract: Contract, window: Window, watermark: str) -> dict[str, Any]:
    """SoQL for records of the `lookback_days` before the window that changed since the
    watermark, oldest change first."""
    if contract.change_column is None:
        raise ValueError(f"{contract.dag_id} has no incremental change column")
    if not _WATERMARK.fullmatch(watermark):
        raise ValueError(f"refusing watermark {watermark!r}: not a Socrata timestamp")
    change = contract.change_column.wire_name
    event = contract.event_column.wire_name
    assert contract.incremental is not None
    earliest = (window.start - timedelta(days=contract.incremental.lookback_days)).strftime(
        FLOATING_FORMAT
    )
    start, _ = window.soql_bounds()
    params: dict[str, Any] = {
        "where": (f"{change} >= '{watermark}' AND {event} >= '{earliest}' AND {event} < '{start}'"),
        "order": f"{change} ASC, {contract.key_column.wire_name} ASC",
    }
    if contract.system_fields:
        params["exclude_system_fields"] = False
    return params


def _page_through(
    client: Any,
    contract: Contract,
    base: dict[str, Any],
    out: Any,
    limit: int,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    label: str,
) -> tuple[int, int, int]:
    """Write every page of one query to `out`; (rows, pages, retries)."""
    rows = pages = retries = 0
    while True:
        params = {**base, "limit": limit, "offset": rows}
        describe = f"{contract.dag_id} ({contract.dataset_id}) {label} offset {rows}"
        page, used = fetch_page(
            lambda **p: client.get(contract.dataset_id, **p), params, policy, describe, sleep
        )
        retries += used
        for record in page:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
        rows += len(page)
        pages += 1
        if len(page) < limit:
            return rows, pages, retries


def extract_window(
    contract: Contract,
    window: Window,
    out_path: Path,
    *,
    client: Any | None = None,
    policy: RetryPolicy | None = None,
    page_size: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    watermark: str | None = None,
) -> ExtractResult:
    """Write every record of the window to `out_path` (NDJSON), page by page, then (given a
    watermark) every record outside the window changed since it. Window rows come first."""
    policy = policy or RetryPolicy.from_env()
    limit = page_size or contract.page_size
    own_client = client is None
    if client is None:
        client = socrata_client(contract, app_token(), policy.timeout_seconds)
    partial = out_path.with_suffix(out_path.suffix + ".partial")
    queries = [("window", query_params(contract, window))]
    if watermark is not None and contract.incremental is not None:
        queries.append(("changes", changes_params(contract, window, watermark)))
    counts: dict[str, int] = {}
    pages = retries = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            for label, base in queries:
                rows, used_pages, used_retries = _page_through(
                    client, contract, base, out, limit, policy, sleep, label
                )
                counts[label] = rows
                pages += used_pages
                retries += used_retries
        partial.replace(out_path)
    finally:
        partial.unlink(missing_ok=True)
        if own_client:
            client.close()
    rows = sum(counts.values())
    log.info(
        "%s: extracted %d records of %s .. %s and %d changed elsewhere since %s, "
        "in %d page(s) (%d retries)",
        contract.dag_id,
        counts["window"],
        window.start,
        window.end,
        counts.get("changes", 0),
        watermark,
        pages,
        retries,
    )
    return ExtractResult(out_path, rows, pages, retries, counts["window"], counts.get("changes", 0))
