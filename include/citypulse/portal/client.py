"""The Socrata SODA API client every task that talks to a portal uses (extract, reconcile).

One dataset's endpoint through `sodapy`: the live portal named in the contract, or
`SOCRATA_BASE_URL` when set (the two paths differ only in the base URL and the app token).
Under sodapy, `PortalAdapter` is the session's only transport: it sends nothing to another
origin than the portal's (scheme, host, port: the app token stays home, whatever a redirect
says), holds every response to a total deadline (connect and the whole body) and checks that
a 200 is what was asked (a query's JSON list of objects, the view metadata's JSON object).
Transient failures (429, 5xx, timeouts, dropped connections, a body that is not data) are
retried with exponential backoff honouring a valid Retry-After; any other 4xx, or a redirect
to another origin, fails at once with the portal's own message. Every message is scrubbed of
the app token. Imported only inside tasks (sodapy, requests).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter

from citypulse.contracts.contract import Contract
from citypulse.exceptions import PortalError
from citypulse.portal.metadata import ViewMetadata
from citypulse.secrets import redact, remember
from citypulse.settings import SOCRATA_APP_TOKEN_ENV, SOCRATA_BASE_URL_ENV, SOCRATA_CONN_ID

log = logging.getLogger(__name__)
# Socrata row ids (`:id`), as they may go back into SoQL: letters, digits and `-._` only.
_ROW_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_COUNT = re.compile(r"[0-9]{1,18}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a request before the task gives up (Airflow then retries the task)."""

    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 120.0
    # Seconds without a byte before a read gives up (connect and each read).
    timeout_seconds: float = 60.0
    # Seconds a whole response may take, connect to last byte (a portal dripping bytes).
    deadline_seconds: float = 300.0

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
            deadline_seconds=float(
                env.get("CITYPULSE_HTTP_DEADLINE_SECONDS", cls.deadline_seconds)
            ),
        )

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt `attempt + 1`: a valid Retry-After (a finite,
        non-negative number of seconds), else our own exponential backoff."""
        if retry_after:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = math.nan  # an HTTP date: fall back to our own backoff
            if math.isfinite(seconds) and seconds >= 0:
                return min(seconds, self.max_backoff_seconds)
        backoff = self.backoff_seconds * (2**attempt)
        return min(backoff, self.max_backoff_seconds) * (0.5 + random.random() / 2)


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
    remember(token)
    return token


class BadResponse(requests.RequestException):
    """A 200 to a query that is not data (a proxy's HTML page, text, an object, nothing):
    transient, like a 5xx."""


class ForeignOrigin(requests.RequestException):
    """A request (a redirect's, say) for another origin than the portal's: never sent, so the
    app token stays home. Terminal: asking again would be sent the same way."""


@dataclass(frozen=True)
class Origin:
    """Where a secret may be sent: scheme, host and port, the default port spelled out
    (`https://h` is `https://h:443`), as browsers compare origins (RFC 6454)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parsed = urlparse(url)
        scheme = parsed.scheme.lower()
        try:
            port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            port = -1  # not a port: an origin no portal has
        return cls(scheme, (parsed.hostname or "").lower(), port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class PortalAdapter(HTTPAdapter):
    """requests' transport for one portal: nothing sent to another origin, each response
    whole within `deadline` seconds of the request, a 200 to a query checked to be a JSON list
    of objects before sodapy reads it.

    The origin check sits here, in the transport, rather than in `Session.rebuild_auth` or
    `resolve_redirects`: those run for redirects only and strip just `Authorization`, while
    the app token is a session header sent with every request. `guard` makes this adapter the
    session's only one, mounted for every scheme requests can send, so every request the
    session sends (a first request, a redirect's, a retry's, https or http) passes this one
    check before a byte leaves; a redirect to another origin is refused when it arrives, with
    both origins named.
    """

    # Bytes read at most per socket read: each returns as soon as anything arrived.
    CHUNK = 1 << 16

    def __init__(self, origin: Origin, deadline: float) -> None:
        super().__init__()
        self.origin = origin
        self.deadline = deadline

    def guard(self, session: requests.Session) -> requests.Session:
        """Make this adapter the only transport of `session`, for http and https alike."""
        session.adapters.clear()
        for prefix in ("https://", "http://"):
            session.mount(prefix, self)
        return session

    def admit(self, url: str, redirected_from: str | None = None) -> None:
        """Raise ForeignOrigin unless `url` is on the portal's origin."""
        there = Origin.of(url)
        if there == self.origin:
            return
        how = (
            f"{_shown_url(redirected_from)}: the portal redirected to {_shown_url(url)}"
            if redirected_from
            else f"refused a request for {_shown_url(url)}"
        )
        raise ForeignOrigin(
            redact(
                f"{how}, another origin ({there}) than the portal's ({self.origin}); not "
                "followed, so the app token stays with its portal"
            )
        )

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        self.admit(request.url)
        began = time.monotonic()
        response = super().send(request, stream=True, **kwargs)
        url = _shown_url(request.url)
        if response.is_redirect:
            target = urljoin(request.url, response.headers.get("Location", ""))
            try:
                self.admit(target, redirected_from=request.url)
            except ForeignOrigin as exc:
                response.close()
                exc.response = response
                raise
        chunks = []
        while chunk := response.raw.read1(self.CHUNK, decode_content=True):
            chunks.append(chunk)
            waited = time.monotonic() - began
            if waited > self.deadline:
                response.close()
                raise requests.Timeout(
                    f"{url}: no complete answer after {waited:.0f} s (the deadline is "
                    f"{self.deadline:g} s)"
                )
        response._content = b"".join(chunks)
        response._content_consumed = True
        if response.status_code == 200:
            _check_body(response, urlparse(request.url).path, url)
        return response


def _is_rows(body: Any) -> bool:
    return isinstance(body, list) and all(isinstance(row, dict) for row in body)


# What a 200 must hold, by the path it answers: a query's rows, or the view's metadata.
_BODIES: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("/resource/", "a JSON list of records", _is_rows),
    ("/api/views/", "a JSON object (view metadata)", lambda body: isinstance(body, dict)),
)


def _check_body(response: Any, path: str, url: str) -> None:
    """Raise BadResponse unless a 200's body is what its path answers (see `_BODIES`)."""
    expected = next(((what, ok) for prefix, what, ok in _BODIES if path.startswith(prefix)), None)
    if expected is None:
        return
    what, ok = expected
    body: bytes = response.content
    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    if parsed is None or not ok(parsed):
        kind = response.headers.get("Content-Type", "no content type")
        shown = redact(body[:200].decode("utf-8", errors="replace"))
        raise BadResponse(
            f"{url}: HTTP 200 ({kind}) but not {what}: {shown!r}",
            response=response,
        )


def _shown_url(url: str) -> str:
    """A URL as messages show it: no query (it may hold an app token), scrubbed."""
    parsed = urlparse(url)
    return redact(f"{parsed.scheme}://{parsed.netloc}{parsed.path}")


def socrata_client(
    contract: Contract, token: str | None, timeout: float, deadline: float = 300.0
) -> Any:
    """A sodapy client for the contract's portal, or for `SOCRATA_BASE_URL` when set."""
    from sodapy import Socrata

    base = os.environ.get(SOCRATA_BASE_URL_ENV, "").strip()
    if base:
        parsed = urlparse(base)
        domain, scheme = parsed.netloc, parsed.scheme or "http"
    else:
        domain, scheme = contract.portal, "https"
    adapter = PortalAdapter(Origin.of(f"{scheme}://{domain}"), deadline)
    client = Socrata(
        domain,
        token,
        session_adapter={"prefix": f"{scheme}://", "adapter": adapter},
        timeout=timeout,
    )
    adapter.guard(client.session)
    return client


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, ForeignOrigin):
        return False
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(
        exc,
        (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            BadResponse,
            json.JSONDecodeError,
        ),
    )


def _portal_message(exc: Exception) -> str:
    """What went wrong, in the portal's words when it sent any, scrubbed of secrets."""
    response = getattr(exc, "response", None)
    if isinstance(exc, BadResponse | ForeignOrigin) or response is None:
        return redact(f"{type(exc).__name__}: {exc}")
    try:
        body = response.json()
        text = f"HTTP {response.status_code} {body.get('code', '')}: {body.get('message', '')}"
    except (ValueError, AttributeError):
        text = f"HTTP {response.status_code}: {response.text[:300]}"
    return redact(text)


def _one_row(rows: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The one row an aggregate without GROUP BY answers; BadResponse for any other number."""
    if len(rows) != 1:
        raise BadResponse(f"{len(rows)} rows in answer to a {what}, not one: {rows[:2]!r}"[:300])
    return rows[0]


def _value_of(row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    return str(value) if value not in (None, "") else None


def _count_of(rows: list[dict[str, Any]]) -> int:
    """The `n` of a `count(*) AS n` answer; BadResponse unless it is one row with a number."""
    value = str(_one_row(rows, "count(*)").get("n", ""))
    if not _COUNT.fullmatch(value):
        raise BadResponse(f"a count(*) answered {rows[0]!r} (no number n)"[:300])
    return int(value)


class SocrataClient:
    """One dataset's SODA endpoint: requests retried while the failure is transient, queries
    paged by row id, counted and summarised. Counts the pages read and the retries used."""

    def __init__(
        self,
        contract: Contract,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.contract = contract
        self.policy = policy or RetryPolicy.from_env()
        self.pages = 0
        self.retries = 0
        self._sleep = sleep
        self._client = socrata_client(
            contract, app_token(), self.policy.timeout_seconds, self.policy.deadline_seconds
        )

    def __enter__(self) -> SocrataClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def describe(self, what: str) -> str:
        return f"{self.contract.dag_id} ({self.contract.dataset_id}) {what}"

    def get(self, params: dict[str, Any], describe: str) -> list[dict[str, Any]]:
        """One request's rows, retried while the failure is transient."""
        return self.read(params, describe, lambda rows: rows)

    def read(
        self, params: dict[str, Any], describe: str, answer: Callable[[list[dict[str, Any]]], T]
    ) -> T:
        """`answer` of one request's rows, the request retried while the failure is transient
        (`answer` raising BadResponse, a reply that is not what the query asks for, is one)."""
        return self._retrying(
            lambda: answer(self._client.get(self.contract.dataset_id, **params)), describe
        )

    def metadata(self) -> ViewMetadata:
        """The dataset's view metadata (`/api/views/<id>.json`): when its rows last changed,
        its columns and row identifier; asked like any query (retries, deadline, origin)."""
        return self._retrying(self._view_metadata, self.describe("view metadata"))

    def _view_metadata(self) -> ViewMetadata:
        raw = self._client.get_metadata(self.contract.dataset_id)
        try:
            return ViewMetadata.from_json(raw)
        except ValueError as exc:
            raise BadResponse(f"not view metadata: {exc}") from None

    def _retrying(self, fetch: Callable[[], T], describe: str) -> T:
        """`fetch()`, tried again while it fails transiently, up to the policy's attempts."""
        policy = self.policy
        for attempt in range(policy.attempts):
            try:
                result = fetch()
            except Exception as exc:
                if not _is_transient(exc):
                    refused = "refused" if getattr(exc, "response", None) is not None else "failed"
                    raise PortalError(
                        f"{describe}: the portal {refused} the query: {_portal_message(exc)}"
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
                self.retries += 1
                self._sleep(wait)
                continue
            return result
        raise AssertionError("unreachable")

    def keyset(self, where: str, label: str, limit: int) -> Iterator[list[dict[str, Any]]]:
        """Every record matching `where`, system fields included, in pages ordered by
        Socrata's row id, each page starting after the last row id read: records inserted
        or deleted while paging cannot shift a page, so none repeats and none is skipped
        but for such a record itself (the caller's count check finds that)."""
        cursor: str | None = None
        while True:
            clause = where if cursor is None else f"({where}) AND :id > '{cursor}'"
            page = self.get(
                {"where": clause, "order": ":id", "limit": limit, "exclude_system_fields": False},
                self.describe(f"{label} after {cursor or 'the start'}"),
            )
            self.pages += 1
            yield page
            if len(page) < limit:
                return
            cursor = str(page[-1].get(":id", ""))
            if not _ROW_ID.fullmatch(cursor):
                raise PortalError(
                    self.describe(f"{label}: the portal sent a row id {cursor[:40]!r}, not one")
                    + " it can page by",
                    transient=True,
                )

    def count(self, where: str, label: str) -> int:
        """How many records the portal holds for `where` (`count(*)`): an answer without
        exactly one row holding a number is a bad response (retried), never zero."""
        return self.read(
            {"select": "count(*) AS n", "where": where},
            self.describe(f"{label} count"),
            _count_of,
        )

    def newest(self, column: str, label: str) -> str | None:
        """The newest value of a timestamp column in the whole dataset (`max()`); None when
        the dataset has none (Socrata answers one empty row)."""
        return self.read(
            {"select": f"max({column}) AS newest"},
            self.describe(f"{label} newest"),
            lambda rows: _value_of(_one_row(rows, "max()"), "newest"),
        )

    def days(self, column: str, change: str | None) -> list[dict[str, Any]]:
        """Per local day of a timestamp column, the dataset's record count and (given a change
        column) its newest change: one grouped query over the whole history."""
        select = f"date_trunc_ymd({column}) AS day, count(*) AS n"
        if change is not None:
            select += f", max({change}) AS changed"
        return self.get(
            {"select": select, "group": "day", "order": "day", "limit": 50_000},
            self.describe("records per day"),
        )
