"""The Socrata client every task that talks to a portal uses (extract, reconcile).

One dataset's endpoint on the live portal named in the contract, or on `SOCRATA_BASE_URL`
when set (the two paths differ only in the base URL and the app token), through SODA 2.1 or
SODA3 (`transport`: the contract's `api:`, else `CITYPULSE_SODA_API`). Either way every
request goes through one `PortalAdapter` (`http`): nothing sent to another origin than the
portal's, a total deadline per response, a 200 checked to be what was asked. Transient
failures (429, 5xx, timeouts, dropped connections, a body that is not data) are retried with
exponential backoff honouring a valid Retry-After; any other 4xx, or a redirect to another
origin, fails at once with the portal's own message and what to do (a refused token names
where tokens come from; a retired SODA 2 says to switch to SODA3). Every message is scrubbed
of the app token. Imported only inside tasks (sodapy, requests).
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

import requests

from citypulse.contracts.contract import Contract
from citypulse.exceptions import PortalError
from citypulse.portal.http import BadResponse, ForeignOrigin
from citypulse.portal.metadata import ViewMetadata
from citypulse.portal.transport import (
    TOKEN_SOURCES,
    SoqlQuery,
    choose_api,
    open_transport,
)
from citypulse.portal.transport import socrata_client as socrata_client
from citypulse.secrets import redact, remember
from citypulse.settings import SOCRATA_APP_TOKEN_ENV, SOCRATA_CONN_ID, SODA_API_ENV

log = logging.getLogger(__name__)
# Socrata row ids (`:id`), as they may go back into SoQL: letters, digits and `-._` only.
_ROW_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_COUNT = re.compile(r"[0-9]{1,18}")
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


def _refusal_hint(exc: Exception, api: str) -> str:
    """What to do about a terminal refusal, when its status says (never the token)."""
    response = getattr(exc, "response", None)
    # `is not None`, not truthiness: a Response is falsy when its status is an error.
    refused = isinstance(exc, requests.HTTPError) and response is not None
    status = response.status_code if refused and response is not None else None
    if status in (401, 403):
        return f"; the portal refused the app token (or its absence): check {TOKEN_SOURCES}"
    if api == "soda2" and status in (404, 410):
        return (
            "; if the portal has retired SODA 2 (/resource/), read it through SODA3: set "
            f"{SODA_API_ENV}=soda3 (or the contract's `api: soda3`) and an app token "
            f"({TOKEN_SOURCES})"
        )
    return ""


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
        token = app_token()
        self.api = choose_api(contract, token)
        self._transport = open_transport(
            self.api, contract, token, self.policy.timeout_seconds, self.policy.deadline_seconds
        )

    def __enter__(self) -> SocrataClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._transport.close()

    def describe(self, what: str) -> str:
        return f"{self.contract.dag_id} ({self.contract.dataset_id}) {what}"

    def get(self, query: SoqlQuery, describe: str) -> list[dict[str, Any]]:
        """One query's rows, retried while the failure is transient."""
        return self.read(query, describe, lambda rows: rows)

    def read(
        self, query: SoqlQuery, describe: str, answer: Callable[[list[dict[str, Any]]], T]
    ) -> T:
        """`answer` of one query's rows, the query retried while the failure is transient
        (`answer` raising BadResponse, a reply that is not what the query asks for, is one)."""
        return self._retrying(lambda: answer(self._transport.rows(query)), describe)

    def metadata(self) -> ViewMetadata:
        """The dataset's view metadata (`/api/views/<id>.json`): when its rows last changed,
        its columns and row identifier; asked like any query (retries, deadline, origin)."""
        return self._retrying(self._view_metadata, self.describe("view metadata"))

    def _view_metadata(self) -> ViewMetadata:
        raw = self._transport.view()
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
                        f"{describe}: the portal {refused} the query ({self.api}): "
                        f"{_portal_message(exc)}{_refusal_hint(exc, self.api)}"
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
                SoqlQuery(where=clause, order=":id", limit=limit, system_fields=True),
                self.describe(f"{label} after {cursor or 'the start'}"),
            )
            self.pages += 1
            if page or cursor is None:
                yield page
            if not page or (len(page) < limit and self._transport.short_page_is_last):
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
            SoqlQuery(select="count(*) AS n", where=where),
            self.describe(f"{label} count"),
            _count_of,
        )

    def newest(self, column: str, label: str) -> str | None:
        """The newest value of a timestamp column in the whole dataset (`max()`); None when
        the dataset has none (Socrata answers one empty row)."""
        return self.read(
            SoqlQuery(select=f"max({column}) AS newest"),
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
            SoqlQuery(select=select, group="day", order="day", limit=50_000),
            self.describe("records per day"),
        )
