"""How a query reaches a Socrata portal: SODA 2.1 through `sodapy`, or SODA3.

SODA 2.1: `GET /resource/<id>.json?$select=&$where=...`. SODA3 (what Socrata's documentation
now presents as the standard, dev.socrata.com/docs/queries): `POST /api/v3/views/<id>/
query.json` with `{"query": "<SoQL statement>", "page": {"pageNumber": 1, "pageSize": n},
"includeSynthetic": true}` and an app token on every request; the answer is a JSON list of
rows or an object with a `data` list. Which one a dataset speaks: the contract's `api:`, else
`CITYPULSE_SODA_API` (soda2 | soda3 | auto; auto is SODA3 when an app token is configured).
Both send every request through one `PortalAdapter` (origin check, deadline, body check) and
read the view metadata (`/api/views/<id>.json`) the same way. Imported only inside tasks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlparse

import requests

from citypulse.contracts.contract import Contract
from citypulse.exceptions import PortalError
from citypulse.portal.http import Origin, PortalAdapter, soda3_rows
from citypulse.settings import (
    SOCRATA_APP_TOKEN_ENV,
    SOCRATA_BASE_URL_ENV,
    SOCRATA_CONN_ID,
    SODA_API_CHOICES,
    SODA_API_ENV,
)

log = logging.getLogger(__name__)
Api = Literal["soda2", "soda3"]
# Where a token comes from, as messages name it (never the token itself).
TOKEN_SOURCES = f"`{SOCRATA_APP_TOKEN_ENV}` or the `{SOCRATA_CONN_ID}` connection's password"


@dataclass(frozen=True)
class SoqlQuery:
    """One SoQL query, written once and sent as SODA 2.1 parameters or a SODA3 statement."""

    select: str | None = None
    where: str | None = None
    group: str | None = None
    order: str | None = None
    limit: int | None = None
    offset: int | None = None  # only for a few rows far down an order (profiles)
    system_fields: bool = False  # `:id`, `:created_at`, `:updated_at` with every row

    def soda2_params(self) -> dict[str, Any]:
        """sodapy's keyword arguments (`$select`, `$where`, ... and the system fields flag)."""
        params: dict[str, Any] = {
            "select": self.select,
            "where": self.where,
            "group": self.group,
            "order": self.order,
            "limit": self.limit,
            "offset": self.offset,
        }
        if self.system_fields:
            params["exclude_system_fields"] = False
        return {name: value for name, value in params.items() if value is not None}

    def statement(self) -> str:
        """The whole query as one SoQL statement, as SODA3 takes it."""
        select = self.select or ("*" if not self.system_fields else ":*, *")
        clauses = [f"SELECT {select}"]
        for keyword, value in (
            ("WHERE", self.where),
            ("GROUP BY", self.group),
            ("ORDER BY", self.order),
            ("LIMIT", self.limit),
            ("OFFSET", self.offset),
        ):
            if value is not None:
                clauses.append(f"{keyword} {value}")
        return " ".join(clauses)


class Transport(Protocol):
    """One dataset's endpoint on one portal, in one API."""

    api: Api
    # Whether a page shorter than asked is the last one (else only an empty page is).
    short_page_is_last: bool

    def rows(self, query: SoqlQuery) -> list[dict[str, Any]]: ...

    def view(self) -> Any: ...

    def close(self) -> None: ...


def portal_base(contract: Contract) -> tuple[str, str]:
    """(scheme, host[:port]) of the contract's portal, or of `SOCRATA_BASE_URL` when set."""
    base = os.environ.get(SOCRATA_BASE_URL_ENV, "").strip()
    if base:
        parsed = urlparse(base)
        return parsed.scheme or "http", parsed.netloc
    return "https", contract.portal


def choose_api(contract: Contract, token: str | None) -> Api:
    """The API to read the contract's dataset with: its `api:`, else `CITYPULSE_SODA_API`;
    `auto` is SODA3 with an app token and SODA 2.1 (with a warning) without one."""
    setting = contract.api or os.environ.get(SODA_API_ENV, "").strip().lower() or "auto"
    source = f"the contract's `api: {setting}`" if contract.api else f"{SODA_API_ENV}={setting}"
    if setting not in SODA_API_CHOICES:
        raise PortalError(f"{source} is not one of {', '.join(SODA_API_CHOICES)}")
    if setting == "auto":
        if token:
            return "soda3"
        log.warning(
            "%s (%s): no Socrata app token, so reading through SODA 2.1, which Socrata has put "
            "on its deprecation roadmap; configure %s to read through SODA3",
            contract.dag_id,
            contract.dataset_id,
            TOKEN_SOURCES,
        )
        return "soda2"
    if setting == "soda3" and not token:
        raise PortalError(
            f"{contract.dag_id}: {source}, but SODA3 requires an app token and none is "
            f"configured: set {TOKEN_SOURCES} (or choose soda2)"
        )
    return "soda3" if setting == "soda3" else "soda2"


def open_transport(
    api: Api, contract: Contract, token: str | None, timeout: float, deadline: float
) -> Transport:
    """The transport of `api` to the contract's dataset (see `portal_base`)."""
    if api == "soda3":
        return Soda3(contract, token, timeout, deadline)
    return Soda2(contract, token, timeout, deadline)


def socrata_client(
    contract: Contract, token: str | None, timeout: float, deadline: float = 300.0
) -> Any:
    """A sodapy client for the contract's portal, or for `SOCRATA_BASE_URL` when set, whose
    session's only transport is a `PortalAdapter`."""
    from sodapy import Socrata

    scheme, domain = portal_base(contract)
    adapter = PortalAdapter(Origin.of(f"{scheme}://{domain}"), deadline)
    client = Socrata(
        domain,
        token,
        session_adapter={"prefix": f"{scheme}://", "adapter": adapter},
        timeout=timeout,
    )
    adapter.guard(client.session)
    return client


class Soda2:
    """SODA 2.1 through sodapy: `GET /resource/<id>.json`."""

    api: Api = "soda2"
    short_page_is_last = True

    def __init__(self, contract: Contract, token: str | None, timeout: float, deadline: float):
        self._dataset_id = contract.dataset_id
        self._client = socrata_client(contract, token, timeout, deadline)

    def rows(self, query: SoqlQuery) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._client.get(self._dataset_id, **query.soda2_params())
        return rows

    def view(self) -> Any:
        return self._client.get_metadata(self._dataset_id)

    def close(self) -> None:
        self._client.close()


class Soda3:
    """SODA3: `POST /api/v3/views/<id>/query.json`, the app token in `X-App-Token`.

    Page numbers stay at 1: keyset paging is written into the statement (`:id > '<last>'`),
    since "as the page number rises, query performance will decrease drastically"
    (dev.socrata.com/docs/queries/page). Whether a portal caps `pageSize` below the
    statement's LIMIT is not documented, so only an empty page ends a keyset read.
    """

    api: Api = "soda3"
    short_page_is_last = False

    def __init__(self, contract: Contract, token: str | None, timeout: float, deadline: float):
        scheme, domain = portal_base(contract)
        dataset = quote(contract.dataset_id, safe="")
        self._query_url = f"{scheme}://{domain}/api/v3/views/{dataset}/query.json"
        self._view_url = f"{scheme}://{domain}/api/views/{dataset}.json"
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json"})
        if token:
            self._session.headers["X-App-Token"] = token
        PortalAdapter(Origin.of(f"{scheme}://{domain}"), deadline).guard(self._session)

    def rows(self, query: SoqlQuery) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "query": query.statement(),
            "page": {"pageNumber": 1, "pageSize": query.limit or 1000},
            "includeSynthetic": query.system_fields,
        }
        response = self._session.post(self._query_url, json=body, timeout=self._timeout)
        _raise_for_status(response)
        rows = soda3_rows(response.json())  # checked by PortalAdapter: never None here
        return rows if rows is not None else []

    def view(self) -> Any:
        response = self._session.get(self._view_url, timeout=self._timeout)
        _raise_for_status(response)
        return response.json()

    def close(self) -> None:
        self._session.close()


def _raise_for_status(response: requests.Response) -> None:
    """HTTPError (carrying the response) for any answer but 200."""
    if response.status_code != 200:
        raise requests.HTTPError(
            f"HTTP {response.status_code} {response.reason}", response=response
        )
