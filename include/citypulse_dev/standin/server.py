"""An in-memory HTTP server that answers SODA 2.1 and SODA3 requests as Socrata portals do.

Serves `GET /resource/{dataset_id}.json` with a SoQL subset (see `soql`), SODA3's
`POST /api/v3/views/{dataset_id}/query.json` (a SoQL statement, an app token required,
answered by the same engine) and the view metadata `GET /api/views/{dataset_id}.json` (see
`views`); injects faults (429/5xx, delays, dropped connections) on demand and offers an admin
API under `/_standin/` so another process can load data and faults into a running server:

    POST   /_standin/datasets/{id}/records[?key=K]     JSON array of records
    GET    /_standin/datasets/{id}/records             records with system fields
    DELETE /_standin/datasets/{id}/records?key=K&values=a,b
    POST   /_standin/datasets/{id}/columns[?key=K]     JSON object {field: type}
    POST   /_standin/datasets/{id}/view                JSON object: fields the view metadata
                                                       answers instead of its own (a lie)
    DELETE /_standin/datasets/{id}/view                the view metadata's own fields again
    DELETE /_standin/datasets/{id}  |  DELETE /_standin/datasets
    POST   /_standin/faults  (JSON object of Fault fields)  |  DELETE /_standin/faults
    GET|POST /_standin/settings  {"soda3_shape": "rows"|"data", "soda2": "served"|"retired"}
    GET    /_standin/requests  |  GET /_standin/health

Run it in the foreground with `python -m citypulse_dev.standin.server --port 8765`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import logging
import re
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from citypulse_dev.standin import soql, views

logger = logging.getLogger("citypulse_dev.standin")

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
REDACTED = "<redacted>"
_ROW_ID_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"  # 32 symbols: 5 bits each
_ROW_ID_PAIRS = [a + b for a in _ROW_ID_ALPHABET for b in _ROW_ID_ALPHABET]  # 10 bits each
_WIRE_TYPES = frozenset({str, bool, dict, list})
_FREEZE_BATCH = 10_000
_CACHE_SIZE = 4
_TOKEN_PARAM_RE = re.compile(r"((?:\$|%24){2}app_token=)[^&]*", re.IGNORECASE)
_DEFAULT_FAULT_BODIES: dict[int, tuple[str, str]] = {
    400: ("query.compiler.malformed", "Malformed query (fault injected by the stand-in)"),
    429: ("too_many_requests", "Too many requests; slow down and retry later"),
    500: ("internal_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service temporarily unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


@dataclass
class Fault:
    """A failure to inject into the next matching SODA requests, used up after `times` hits.

    Matches `GET /resource/...` requests for `dataset_id` (any when None) whose `$offset` is at
    least `min_offset`; with `aggregate` True (False) only aggregate (row) queries, with
    `grouped` True (False) only (no) `$group` queries; `skip` lets that many matching requests
    pass first. `delay` sleeps first; then `drop` closes the
    connection without a response, or `status` answers with that error (plus `Retry-After`
    when `retry_after` is set; any text, even an invalid one), or `redirect` answers 302 to that
    URL, or `body` answers 200 with that raw body. Otherwise the request is answered, `short`
    cuts the answer to that many rows (a proxy or portal hiccup), and `insert` puts those
    records into the dataset right after answering (the portal publishing while a client
    pages; `insert_key` makes a record with an existing key replace it). `adjust` adds to
    numeric fields of the answer's rows (a count that lies: `{"n": 3}`), only of the rows whose
    fields start with the texts of `adjust_where` (`{"day": "2024-05-01"}`). `drip` sends the
    answer a byte at a time, that many seconds apart. `times=None` never runs out. With
    `metadata` True the fault matches view metadata requests (`/api/views/{id}.json`) instead
    of queries.
    """

    status: int | None = None
    retry_after: int | str | None = None
    delay: float = 0.0
    drop: bool = False
    code: str | None = None
    message: str | None = None
    dataset_id: str | None = None
    min_offset: int = 0
    times: int | None = 1
    short: int | None = None
    insert: tuple[dict[str, Any], ...] = ()
    insert_key: str | None = None
    aggregate: bool | None = None
    grouped: bool | None = None
    skip: int = 0
    # A 302 to this URL (another host, say) instead of an answer.
    redirect: str | None = None
    # A 200 with this body (an HTML proxy page, text, an object, nothing) instead of rows.
    body: str | None = None
    content_type: str = "application/json"
    # Seconds between the bytes of the answer (a portal that drips).
    drip: float = 0.0
    # Matches `GET /api/views/{id}.json` (view metadata) instead of queries.
    metadata: bool = False
    adjust: dict[str, int] = field(default_factory=dict)
    adjust_where: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        effects = (
            self.status is not None,
            self.drop,
            self.delay > 0,
            self.short is not None,
            bool(self.insert),
            self.redirect is not None,
            self.body is not None,
            self.drip > 0,
            bool(self.adjust),
        )
        if not any(effects):
            raise ValueError(
                "a Fault needs a status, a delay, drop=True, short, insert, redirect, body, "
                "drip or adjust"
            )
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error (4xx/5xx), got {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError("fault times must be >= 1 (or None for unlimited)")
        if self.short is not None and self.short < 0:
            raise ValueError("fault short must be >= 0")
        self.insert = tuple(dict(record) for record in self.insert)

    def matches(
        self,
        dataset_id: str | None,
        offset: int,
        aggregate: bool,
        grouped: bool = False,
        metadata: bool = False,
    ) -> bool:
        """True when this fault applies to a request for `dataset_id` at `offset` (a view
        metadata request when `metadata`)."""
        wanted = self.dataset_id is None or self.dataset_id == dataset_id
        if metadata or self.metadata:
            return wanted and metadata == self.metadata
        kind = self.aggregate is None or self.aggregate == aggregate
        group = self.grouped is None or self.grouped == grouped
        return wanted and kind and group and offset >= self.min_offset

    def adjusted(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answer's rows with `adjust` added to those `adjust_where` picks."""
        if not self.adjust:
            return rows
        picked = [
            all(str(row.get(f, "")).startswith(text) for f, text in self.adjust_where.items())
            for row in rows
        ]
        return [
            {**row, **{f: _plus(row.get(f), n) for f, n in self.adjust.items()}} if pick else row
            for row, pick in zip(rows, picked, strict=True)
        ]

    def error_body(self) -> dict[str, Any]:
        """Return the Socrata-like JSON error body for a status fault."""
        status = self.status or 500
        code, message = _DEFAULT_FAULT_BODIES.get(status, ("error", f"HTTP {status}"))
        return {"code": self.code or code, "error": True, "message": self.message or message}


@dataclass(frozen=True)
class RequestRecord:
    """One SODA request as the server saw it; the app token itself is never kept."""

    path: str
    params: dict[str, str]
    status: int  # 0 when a fault dropped the connection without any response
    app_token_present: bool
    dataset_id: str | None = None
    method: str = "GET"
    app_token_sha256: str | None = None  # first 12 hex digits, to tell tokens apart
    rows: int | None = None
    fault: str | None = None


@dataclass
class _Armed:
    """A queued fault, how many more requests it may hit (None: unlimited) and how many
    matching requests it still lets pass."""

    fault: Fault
    remaining: int | None
    skip: int = 0


@dataclass
class _Dataset:
    """Records of one dataset plus what queries and its view metadata need to know about its
    columns (times in epoch milliseconds)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)
    declared: dict[str, str] = field(default_factory=dict)
    inferred: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, dict[str, int]] = field(default_factory=dict)
    version: int = 0
    # The view: columns in the order they became known, the row identifier, when it changed.
    positions: dict[str, None] = field(default_factory=dict)
    key: str | None = None
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    rows_updated_ms: int | None = None
    view_modified_ms: int | None = None
    view_lies: dict[str, Any] = field(default_factory=dict)

    def register(self, names: Iterable[str], now_ms: int) -> None:
        """Give new non-system columns their position in the view."""
        new = [n for n in names if n not in self.positions and n not in soql.SYSTEM_FIELDS]
        if new:
            self.positions.update(dict.fromkeys(new))
            self.view_modified_ms = now_ms

    def index(self, key: str) -> dict[str, int]:
        """Return (building once) the key value -> position index for column `key`."""
        found = self.indexes.get(key)
        if found is None:
            found = {str(r[key]): i for i, r in enumerate(self.records) if r.get(key) is not None}
            self.indexes[key] = found
        return found

    def schema(self, dataset_id: str) -> soql.Schema:
        """Snapshot the column knowledge queries are checked against."""
        return soql.Schema(
            dataset_id, frozenset(self.columns), dict(self.declared), dict(self.inferred)
        )


class _WriteClock:
    """Hands out write timestamps in ms that strictly increase, even within one millisecond."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(int(time.time() * 1000), self._last + 1)
        return self._last

    def observe(self, stamp: str) -> None:
        """Move past an externally supplied `:updated_at` so later writes sort after it."""
        ms = _parse_fixed_ms(stamp)
        if ms is not None:
            self._last = max(self._last, ms)


class SodaStandIn:
    """An in-process SODA 2.1 server over in-memory datasets, with injectable faults."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests_log: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._datasets: dict[str, _Dataset] = {}
        self._faults: list[_Armed] = []
        self._clock = _WriteClock()
        self._row_seq = 0
        self._generation = 0
        self._cache: OrderedDict[tuple[Any, ...], list[soql.Row]] = OrderedDict()
        self._views: dict[str, tuple[int, dict[str, Any]]] = {}  # id -> (version, metadata)
        # SODA3 answers a JSON array of rows, or an object {"data": rows} ("data").
        self.soda3_shape = "rows"
        # SODA 2 endpoints (/resource/) answer 410, as on a portal that retired them.
        self.soda2_retired = False
        self._stopping = threading.Event()
        self._httpd: _StandInHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve on a daemon thread; return the base URL (port 0 picks a free one)."""
        if self._httpd is not None:
            return self.base_url
        self._stopping.clear()
        self._httpd = _StandInHTTPServer((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"soda-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, wake delayed handlers and release the port."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SodaStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The server's root URL, e.g. `http://127.0.0.1:54321`; only valid once started."""
        if self._httpd is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        """`host:port`, the form sodapy's `Socrata(domain, ...)` expects."""
        return f"{self.host}:{self.port}"

    # -- data -----------------------------------------------------------------------------

    def declare(
        self, dataset_id: str, column_types: Mapping[str, str], *, key: str | None = None
    ) -> None:
        """Create the dataset if needed and fix the types of the given wire fields; `key`
        names its row identifier (as `put(key=...)` does)."""
        types = {name: soql.normalise_type(kind) for name, kind in column_types.items()}
        with self._lock:
            dataset = self._datasets.setdefault(dataset_id, _Dataset())
            dataset.declared.update(types)
            dataset.columns.update(types)
            dataset.register(types, int(time.time() * 1000))
            if key is not None:
                dataset.key = key
            self._touch(dataset)

    def put(
        self, dataset_id: str, records: Iterable[Mapping[str, Any]], *, key: str | None = None
    ) -> None:
        """Add records in wire format; with `key`, a record whose key exists replaces it.

        Values are stored as Socrata sends them (numbers and dates become strings, None fields
        are dropped). New records get `:id`/`:created_at`/`:updated_at` unless they carry them;
        a replacement keeps the old `:id` and `:created_at` and always gets a newer `:updated_at`.
        """
        with _gc_paused():
            batch = [_to_wire(record) for record in records]
            if key is not None:
                missing = sum(1 for record in batch if record.get(key) is None)
                if missing:
                    raise ValueError(f"{missing} record(s) lack the key field {key!r}")
            with self._lock:
                dataset = self._datasets.setdefault(dataset_id, _Dataset())
                for record in batch:
                    if ":updated_at" in record:
                        self._clock.observe(str(record[":updated_at"]))
                now = self._clock.next()
                stamp = _format_fixed(now)
                changed = {self._store(dataset, record, key, stamp) for record in batch}
                _learn_columns(dataset, batch)
                dataset.register((n for r in batch for n in r), now)
                if key is not None:
                    dataset.key = key
                newest = max((_parse_fixed_ms(s) or 0 for s in changed), default=None)
                if newest is not None:
                    dataset.rows_updated_ms = max(dataset.rows_updated_ms or 0, newest)
                self._touch(dataset)
        if len(batch) >= _FREEZE_BATCH:
            # Stored records are acyclic and long-lived: moving them out of the cyclic GC's
            # sight stops every later page (50,000 new dicts) from re-scanning millions of them.
            gc.collect()
            gc.freeze()

    def delete(self, dataset_id: str, key: str, values: Iterable[str]) -> int:
        """Remove the records whose `key` field equals one of `values`; return how many."""
        doomed = {str(value) for value in values}
        with self._lock:
            dataset = self._dataset(dataset_id)
            kept = [r for r in dataset.records if r.get(key) is None or str(r[key]) not in doomed]
            removed = len(dataset.records) - len(kept)
            dataset.records = kept
            dataset.indexes.clear()  # positions moved
            if removed:
                dataset.rows_updated_ms = self._clock.next()
            self._touch(dataset)
        return removed

    def records(self, dataset_id: str) -> list[dict[str, Any]]:
        """Return copies of the dataset's stored records, system fields included."""
        with self._lock:
            return [dict(record) for record in self._dataset(dataset_id).records]

    def view(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's view metadata as `GET /api/views/{id}.json` answers it (KeyError for
        an unknown dataset); `rowsUpdatedAt` is the newest write, change or deletion of a
        record (the newest `:updated_at` stored, or the time of the last deletion)."""
        with self._lock:
            dataset = self._dataset(dataset_id)
            lies = dict(dataset.view_lies)
            cached = self._views.get(dataset_id)
            if cached is None or cached[0] != dataset.version:
                created = dataset.created_ms
                answer = views.view_json(
                    dataset_id,
                    name=dataset_id,
                    columns=list(dataset.positions),
                    types={**dataset.inferred, **dataset.declared},
                    records=dataset.records,
                    key=dataset.key,
                    created_at=created // 1000,
                    rows_updated_at=(dataset.rows_updated_ms or created) // 1000,
                    view_last_modified=(dataset.view_modified_ms or created) // 1000,
                )
                cached = self._views[dataset_id] = (dataset.version, answer)
        answer = {**cached[1], **lies}
        return {name: value for name, value in answer.items() if value is not None}

    def lie_in_view(self, dataset_id: str, fields: Mapping[str, Any]) -> None:
        """Make the view metadata answer these fields (None removes one) instead of its own;
        an empty mapping makes it truthful again."""
        with self._lock:
            dataset = self._dataset(dataset_id)
            if fields:
                dataset.view_lies.update(fields)
            else:
                dataset.view_lies.clear()

    def configure(self, *, soda3_shape: str | None = None, soda2: str | None = None) -> None:
        """How the portal behaves: SODA3's answer shape (`rows`: a JSON array, `data`: an
        object with a `data` array) and whether SODA 2 is `served` or `retired` (410)."""
        if soda3_shape not in (None, "rows", "data"):
            raise ValueError(f"soda3_shape is rows or data, not {soda3_shape!r}")
        if soda2 not in (None, "served", "retired"):
            raise ValueError(f"soda2 is served or retired, not {soda2!r}")
        with self._lock:
            self.soda3_shape = soda3_shape or self.soda3_shape
            self.soda2_retired = self.soda2_retired if soda2 is None else soda2 == "retired"

    def settings(self) -> dict[str, str]:
        """The behaviour `configure` sets."""
        return {
            "soda3_shape": self.soda3_shape,
            "soda2": "retired" if self.soda2_retired else "served",
        }

    def datasets(self) -> dict[str, int]:
        """Return each dataset id with its record count."""
        with self._lock:
            return {name: len(ds.records) for name, ds in self._datasets.items()}

    def clear(self, dataset_id: str | None = None) -> None:
        """Forget one dataset (records and declared types), or every dataset when None."""
        with self._lock:
            if dataset_id is None:
                self._datasets.clear()
            else:
                self._datasets.pop(dataset_id, None)
            self._cache.clear()

    # -- faults ---------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order they were added."""
        with self._lock:
            self._faults.append(_Armed(fault, fault.times, fault.skip))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(
        self,
        dataset_id: str | None,
        offset: int,
        aggregate: bool = False,
        grouped: bool = False,
        metadata: bool = False,
    ) -> Fault | None:
        """Return the first fault matching this request and use it up once."""
        with self._lock:
            for armed in self._faults:
                if not armed.fault.matches(dataset_id, offset, aggregate, grouped, metadata):
                    continue
                if armed.skip > 0:
                    armed.skip -= 1
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._faults.remove(armed)
                return armed.fault
        return None

    # -- queries --------------------------------------------------------------------------

    def query(self, dataset_id: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Answer a SODA query; raise SoqlError (404 for an unknown dataset) like Socrata."""
        with self._lock:
            dataset = self._datasets.get(dataset_id)
            if dataset is None:
                raise soql.SoqlError(
                    "not_found",
                    f"Dataset {dataset_id} not found (the stand-in has no such dataset)",
                    {"dataset": dataset_id},
                    status=404,
                )
            schema = dataset.schema(dataset_id)
            version = dataset.version
        compiled = soql.compile_query(params, schema)
        rows = self._selected_rows(dataset_id, version, compiled)
        return compiled.render(rows)

    def _selected_rows(self, dataset_id: str, version: int, query: soql.Query) -> list[soql.Row]:
        # Paging re-runs one filter+sort per page; caching it keeps big extracts linear.
        cache_key = (dataset_id, version, query.row_key)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
            dataset = self._datasets.get(dataset_id)
            snapshot = list(dataset.records) if dataset is not None else []
        rows = query.select_rows(snapshot)
        with self._lock:
            self._cache[cache_key] = rows
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return rows

    def log_request(self, record: RequestRecord) -> None:
        """Append to `requests_log` under the lock."""
        with self._lock:
            self.requests_log.append(record)

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when the server stops."""
        self._stopping.wait(seconds)

    # -- internals ------------------------------------------------------------------------

    def _dataset(self, dataset_id: str) -> _Dataset:
        dataset = self._datasets.get(dataset_id)
        if dataset is None:
            raise KeyError(f"no dataset {dataset_id!r} in the stand-in")
        return dataset

    def _touch(self, dataset: _Dataset) -> None:
        # A server-wide generation, so a dataset cleared and recreated never reuses a version.
        self._generation += 1
        dataset.version = self._generation

    def _store(self, dataset: _Dataset, record: dict[str, Any], key: str | None, stamp: str) -> str:
        """Store one record; return its `:updated_at`."""
        if key is not None:
            position = dataset.index(key).get(str(record[key]))
            if position is not None:
                old = dataset.records[position]
                dataset.records[position] = _with_system(
                    record, old[":id"], old[":created_at"], stamp
                )
                dataset.indexes = {key: dataset.indexes[key]}  # other keys may have moved
                return stamp
        self._row_seq += 1
        stored = _with_system(
            record,
            record.get(":id") or _row_id(self._row_seq),
            record.get(":created_at") or stamp,
            record.get(":updated_at") or stamp,
        )
        dataset.records.append(stored)
        for name, index in dataset.indexes.items():
            if stored.get(name) is not None:
                index[str(stored[name])] = len(dataset.records) - 1
        return str(stored[":updated_at"])


class _StandInHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its SodaStandIn."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], standin: SodaStandIn
    ) -> None:
        self.standin = standin
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    """Routes SODA and admin requests; every response body is JSON."""

    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms.
    disable_nagle_algorithm = True
    server_version = "SodaStandIn/1.0"
    sys_version = ""
    server: _StandInHTTPServer
    # The answer decided for the current request: status, payload, headers.
    _pending: tuple[int, Any, dict[str, str]] | None = None

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if url.path.startswith("/resource/") and method == "GET":
                self._soda(url.path, params)
            elif url.path.startswith("/api/views/") and method == "GET":
                self._view(url.path, params)
            elif url.path.startswith("/api/v3/views/") and method in ("GET", "POST"):
                self._soda3(method, url.path, params)
            elif url.path.startswith("/_standin/"):
                self._admin(method, url.path.split("/")[2:], params)
            else:
                self._send(404, _not_found(f"No route for {method} {url.path}"))
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the response was sent")

    # -- SODA -----------------------------------------------------------------------------

    def _soda(self, path: str, params: dict[str, str]) -> None:
        """SODA 2.1: `GET /resource/{id}.json?$select=...`."""
        started = time.monotonic()
        dataset_id, _, extension = unquote(path[len("/resource/") :]).partition(".")
        token = self.headers.get("X-App-Token") or params.pop("$$app_token", None)
        params.pop("$$app_token", None)
        standin = self.server.standin
        fault = None
        if standin.soda2_retired:
            message = (
                "SODA 2 endpoints (/resource/) are retired on this portal; query SODA3: "
                f"POST /api/v3/views/{dataset_id}/query.json"
            )
            self._pending = (410, {"code": "gone", "error": True, "message": message}, {})
            status, rows = 410, None
        else:
            aggregate = "(" in params.get("$select", "") or bool(params.get("$group"))
            grouped = bool(params.get("$group"))
            fault = standin.take_fault(dataset_id, _offset(params), aggregate, grouped)
            status, rows = self._answer_soda(dataset_id, extension, params, fault)
        self._finish(path, params, dataset_id, token, status, rows, fault, started)

    def _soda3(self, method: str, path: str, params: dict[str, str]) -> None:
        """SODA3: `POST /api/v3/views/{id}/query.json` with `{"query": "<SoQL statement>",
        "page": {"pageNumber", "pageSize"}, "includeSynthetic"}` (or the same as GET
        parameters), an app token required; answered by the SODA 2 engine."""
        started = time.monotonic()
        dataset_id, _, tail = unquote(path[len("/api/v3/views/") :]).partition("/")
        token = self.headers.get("X-App-Token") or params.pop("app_token", None)
        params.pop("app_token", None)
        # Read the body whatever the answer: an unread one would spoil the kept-alive connection.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        standin = self.server.standin
        fault, status, rows, logged = None, 0, None, dict(params)
        try:
            if tail != "query.json":
                raise KeyError(f"No SODA3 route {path}")
            if not token:
                raise PermissionError
            request = _json_of(raw, dict) if method == "POST" else _soda3_get(params)
            soda2 = _soda3_params(request)
            logged = {**soda2, "query": str(request.get("query"))}
            aggregate = "(" in soda2.get("$select", "") or bool(soda2.get("$group"))
            grouped = bool(soda2.get("$group"))
            fault = standin.take_fault(dataset_id, _offset(soda2), aggregate, grouped)
            status, rows = self._answer_soda(dataset_id, "json", soda2, fault)
            if status == 200 and rows is not None and standin.soda3_shape == "data":
                assert self._pending is not None
                self._pending = (200, {"data": self._pending[1]}, self._pending[2])
        except PermissionError:
            message = "SODA3 requests must be authenticated or carry an app token (X-App-Token)"
            body = {"code": "authentication_required", "error": True, "message": message}
            self._pending, status = (401, body, {}), 401
        except KeyError as exc:
            self._pending, status = (404, _not_found(str(exc.args[0])), {}), 404
        except (ValueError, soql.SoqlError) as exc:
            body = exc.body() if isinstance(exc, soql.SoqlError) else _malformed(str(exc))
            self._pending, status = (400, body, {}), 400
        self._finish(path, logged, dataset_id, token, status, rows, fault, started, method)

    def _finish(
        self,
        path: str,
        params: dict[str, str],
        dataset_id: str,
        token: str | None,
        status: int,
        rows: int | None,
        fault: Fault | None,
        started: float,
        method: str = "GET",
    ) -> None:
        """Log the request, then send the decided answer (see `_answer_soda`)."""
        record = RequestRecord(
            path=path,
            params=params,
            status=status,
            app_token_present=bool(token),
            dataset_id=dataset_id,
            method=method,
            app_token_sha256=_token_hash(token),
            rows=rows,
            fault=_describe(fault),
        )
        self.server.standin.log_request(record)
        if self._pending is not None:
            self._send(*self._pending, drip=fault.drip if fault is not None else 0.0)
        logger.info(
            "%s %s -> %s (%s rows, %.0f ms%s)",
            method,
            _redact(self.path),
            status or "dropped",
            "-" if rows is None else rows,
            (time.monotonic() - started) * 1000,
            f", fault {record.fault}" if fault else "",
        )

    def _answer_soda(
        self, dataset_id: str, extension: str, params: dict[str, str], fault: Fault | None
    ) -> tuple[int, int | None]:
        """Decide the response (sent later by `_soda`, after the request is logged, so a client
        that got its answer always finds its request in `requests_log`); return its status (0
        when dropped) and row count."""
        faulted = self._answer_fault(fault)
        if faulted is not None:
            return faulted, None
        if extension not in ("json", ""):
            error = {"code": "not_acceptable", "error": True, "message": "Only .json is served"}
            self._pending = (406, error, {})
            return 406, None
        try:
            result = self.server.standin.query(dataset_id, params)
        except soql.SoqlError as exc:
            self._pending = (exc.status, exc.body(), {})
            return exc.status, None
        if fault is not None and fault.short is not None:
            result = result[: fault.short]
        if fault is not None:
            result = fault.adjusted(result)
        if fault is not None and fault.insert:
            self.server.standin.put(dataset_id, fault.insert, key=fault.insert_key)
        self._pending = (200, result, {})
        return 200, len(result)

    def _answer_fault(self, fault: Fault | None) -> int | None:
        """Decide the answer a fault makes instead of the real one (see `_answer_soda`);
        return its status (0 when dropped), or None when the request is to be answered."""
        self._pending = None
        if fault is None:
            return None
        if fault.delay > 0:
            self.server.standin.wait(fault.delay)
        if fault.drop:
            self.close_connection = True
            return 0
        if fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            self._pending = (fault.status, fault.error_body(), headers)
            return fault.status
        if fault.redirect is not None:
            self._pending = (302, b"", {"Location": fault.redirect})
            return 302
        if fault.body is not None:
            raw = fault.body.encode("utf-8")
            self._pending = (200, raw, {"Content-Type": fault.content_type})
            return 200
        return None

    # -- view metadata --------------------------------------------------------------------

    def _view(self, path: str, params: dict[str, str]) -> None:
        """`GET /api/views/{id}.json`: the dataset's view metadata, or a fault's answer."""
        dataset_id, _, extension = unquote(path[len("/api/views/") :]).partition(".")
        token = self.headers.get("X-App-Token") or params.pop("$$app_token", None)
        standin = self.server.standin
        fault = standin.take_fault(dataset_id, 0, metadata=True)
        status = self._answer_fault(fault)
        if status is None:
            try:
                if extension not in ("json", ""):
                    raise KeyError("Only .json is served")
                self._pending, status = (200, standin.view(dataset_id), {}), 200
            except KeyError:
                message = f"Cannot find view with id {dataset_id}"
                self._pending, status = (404, _not_found(message), {}), 404
        standin.log_request(
            RequestRecord(
                path=path,
                params=params,
                status=status,
                app_token_present=bool(token),
                dataset_id=dataset_id,
                app_token_sha256=_token_hash(token),
                fault=_describe(fault),
            )
        )
        if self._pending is not None:
            self._send(*self._pending, drip=fault.drip if fault is not None else 0.0)
        logger.info(
            "GET %s -> %s%s",
            path,
            status or "dropped",
            f", fault {_describe(fault)}" if fault else "",
        )

    # -- admin ----------------------------------------------------------------------------

    def _admin(self, method: str, parts: list[str], params: dict[str, str]) -> None:
        standin = self.server.standin
        try:
            payload = self._admin_route(standin, method, parts, params)
        except KeyError as exc:
            self._send(404, _not_found(str(exc.args[0]) if exc.args else "not found"))
            return
        except (ValueError, TypeError) as exc:
            self._send(400, {"code": "bad_request", "error": True, "message": str(exc)})
            return
        if payload is None:
            self._send(404, _not_found(f"No admin route for {method} /_standin/{'/'.join(parts)}"))
        else:
            self._send(200, payload)

    def _admin_route(
        self, standin: SodaStandIn, method: str, parts: list[str], params: dict[str, str]
    ) -> Any:
        """Perform an admin action; return its JSON answer, or None for an unknown route."""
        route = (method, *(["datasets", "*", *parts[2:]] if parts[:1] == ["datasets"] else parts))
        dataset_id = unquote(parts[1]) if len(parts) > 1 and parts[0] == "datasets" else ""
        if route == ("GET", "health"):
            return {"status": "ok", "datasets": standin.datasets()}
        if route == ("GET", "settings"):
            return standin.settings()
        if route == ("POST", "settings"):
            standin.configure(**self._json_body(dict))
            return standin.settings()
        if route == ("GET", "requests"):
            return [dataclasses.asdict(record) for record in list(standin.requests_log)]
        if route == ("POST", "faults"):
            standin.add_fault(Fault(**self._json_body(dict)))
            return {"ok": True}
        if route == ("DELETE", "faults"):
            standin.clear_faults()
            return {"ok": True}
        if route == ("DELETE", "datasets"):
            standin.clear()
            return {"ok": True}
        if route == ("DELETE", "datasets", "*"):
            standin.clear(dataset_id)
            return {"ok": True}
        if route == ("POST", "datasets", "*", "columns"):
            standin.declare(dataset_id, self._json_body(dict), key=params.get("key") or None)
            return {"ok": True}
        if route == ("POST", "datasets", "*", "view"):
            standin.lie_in_view(dataset_id, self._json_body(dict))
            return {"ok": True}
        if route == ("DELETE", "datasets", "*", "view"):
            standin.lie_in_view(dataset_id, {})
            return {"ok": True}
        if route == ("GET", "datasets", "*", "records"):
            return standin.records(dataset_id)
        if route == ("POST", "datasets", "*", "records"):
            records = self._json_body(list)
            standin.put(dataset_id, records, key=params.get("key") or None)
            return {"ok": True, "count": len(records)}
        if route == ("DELETE", "datasets", "*", "records"):
            values = [v for v in params.get("values", "").split(",") if v]
            return {"deleted": standin.delete(dataset_id, params["key"], values)}
        return None

    def _json_body(self, kind: type) -> Any:
        return _json_of(self.rfile.read(int(self.headers.get("Content-Length") or 0)), kind)

    # -- output ---------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        drip: float = 0.0,
    ) -> None:
        """Answer with JSON (or `payload` as it is when bytes); `drip`: a byte at a time."""
        headers = dict(headers or {})
        if isinstance(payload, bytes):
            body = payload
        else:
            try:
                body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            except UnicodeEncodeError:  # a lone surrogate: sent as its escape, as JSON allows
                body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", JSON_CONTENT_TYPE))
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if drip <= 0:
            self.wfile.write(body)
            return
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            self.server.standin.wait(drip)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence http.server's own access line: `_soda` logs a redacted one."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s", _redact(format % args))


# ---------------------------------------------------------------------------------------------
# Helpers


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Suspend the cyclic GC while building many acyclic dicts (it would rescan them often)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _to_wire(record: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a record into Socrata's wire form: strings, JSON booleans, location objects."""
    # Generated records are usually wire-ready already; checking types in C keeps loads fast.
    if set(map(type, record.values())) <= _WIRE_TYPES:
        return dict(record)
    return {
        name: value if type(value) is str else _wire_value(value)
        for name, value in record.items()
        if value is not None
    }


def _wire_value(value: Any) -> Any:
    if isinstance(value, bool | dict | list):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00.000"
    return str(value)


def _with_system(record: dict[str, Any], row_id: str, created: str, updated: str) -> dict[str, Any]:
    """Return the record with its system fields first, as Socrata orders them."""
    stored = {":id": row_id, ":created_at": created, ":updated_at": updated}
    stored.update(record)
    # The record's own system fields (if any) must not win over the ones decided here.
    stored[":id"], stored[":created_at"], stored[":updated_at"] = row_id, created, updated
    return stored


def _learn_columns(dataset: _Dataset, batch: Sequence[Mapping[str, Any]]) -> None:
    """Record new columns and guess the type of undeclared ones from their first value."""
    before = set(dataset.columns)
    for record in batch:
        dataset.columns.update(record)
    dataset.columns.difference_update(soql.SYSTEM_FIELDS)
    for name in dataset.columns - before - dataset.declared.keys():
        sample = next((r[name] for r in batch if r.get(name) is not None), None)
        if isinstance(sample, bool):
            dataset.inferred[name] = "boolean"
        elif isinstance(sample, dict):
            dataset.inferred[name] = "location"


def _row_id(seq: int) -> str:
    """Return a unique Socrata-looking row id like `row-ab12.cd34.ef56` for sequence `seq`."""
    # An odd multiplier is a bijection modulo 2**60, so ids stay unique but look random.
    n = (seq * 0x9E3779B97F4A7C15 + 0x632BE5AB) % (1 << 60)
    pairs = _ROW_ID_PAIRS
    first = pairs[n & 1023] + pairs[(n >> 10) & 1023]
    second = pairs[(n >> 20) & 1023] + pairs[(n >> 30) & 1023]
    third = pairs[(n >> 40) & 1023] + pairs[(n >> 50) & 1023]
    return f"row-{first}.{second}.{third}"


def _format_fixed(ms: int) -> str:
    """Format epoch milliseconds like Socrata's fixed timestamps: `2024-05-27T06:08:51.123Z`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _parse_fixed_ms(stamp: str) -> int | None:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _offset(params: Mapping[str, str]) -> int:
    raw = params.get("$offset", "0").strip()
    return int(raw) if raw.isdigit() else 0


def _redact(text: str) -> str:
    """Hide a `$$app_token` query parameter's value."""
    return _TOKEN_PARAM_RE.sub(lambda m: m.group(1) + REDACTED, text)


def _token_hash(token: str | None) -> str | None:
    """The first 12 hex digits of the token's SHA-256, to tell tokens apart in the log."""
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else None


def _describe(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    if fault.drop:
        return "drop"
    if fault.status is not None:
        return str(fault.status)
    if fault.short is not None:
        return f"short page of {fault.short}"
    if fault.redirect is not None:
        return f"redirect to {fault.redirect}"
    if fault.body is not None:
        return f"200 with a {fault.content_type} body"
    if fault.drip > 0:
        return f"drip a byte every {fault.drip:g}s"
    if fault.insert:
        return f"{len(fault.insert)} record(s) inserted"
    if fault.adjust:
        return f"adjusted {fault.adjust} where {fault.adjust_where}"
    return f"delay {fault.delay:g}s"


def _plus(value: Any, amount: int) -> Any:
    """A numeric answer value plus `amount`, spelled as it came (SODA sends numbers as text)."""
    total = int(value or 0) + amount
    return str(total) if isinstance(value, str) or value is None else total


def _not_found(message: str) -> dict[str, Any]:
    return {"code": "not_found", "error": True, "message": message}


def _json_of(raw: bytes, kind: type) -> Any:
    """A request body parsed as JSON of type `kind`; ValueError otherwise."""
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise ValueError(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, kind):
        raise ValueError(f"request body must be a JSON {kind.__name__}")
    return body


def _malformed(message: str) -> dict[str, Any]:
    return {"code": soql.MALFORMED, "error": True, "message": message}


def _soda3_get(params: Mapping[str, str]) -> dict[str, Any]:
    """A SODA3 request sent as GET parameters (`query`, `pageNumber`, `pageSize`)."""
    page = {k: params[k] for k in ("pageNumber", "pageSize") if k in params}
    synthetic = params.get("includeSynthetic", "false").lower() == "true"
    return {"query": params.get("query"), "page": page, "includeSynthetic": synthetic}


def _soda3_params(request: Mapping[str, Any]) -> dict[str, str]:
    """The SODA 2 parameters answering one SODA3 request: its statement's clauses, the page
    (numbered from 1) as the offset and limit within the statement's own LIMIT/OFFSET."""
    statement = request.get("query")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("a SODA3 request needs a `query`: a SoQL statement")
    page = request.get("page") or {}
    if not isinstance(page, dict):
        raise ValueError("`page` must be an object {pageNumber, pageSize}")
    number = _positive(page.get("pageNumber", 1), "pageNumber")
    size = _positive(page.get("pageSize", soql.DEFAULT_LIMIT), "pageSize")
    params = soql.statement_params(statement)
    offset = int(params.get("$offset") or 0) + (number - 1) * size
    end = offset + size
    if params.get("$limit", "").isdigit():
        end = min(end, int(params.get("$offset") or 0) + int(params["$limit"]))
    params["$offset"], params["$limit"] = str(offset), str(max(0, end - offset))
    if request.get("includeSynthetic") is True:
        params["$$exclude_system_fields"] = "false"
    return params


def _positive(value: Any, name: str) -> int:
    number = int(value) if isinstance(value, int | str) and str(value).isdigit() else 0
    if number < 1:
        raise ValueError(f"`page.{name}` must be a positive integer, got {value!r}")
    return number


# ---------------------------------------------------------------------------------------------
# Command line


def load_ndjson(standin: SodaStandIn, spec: str, batch_size: int = 50_000) -> int:
    """Load `FILE.ndjson:DATASET_ID[:KEY]` into the stand-in; return the number of records."""
    path, dataset_id, key = _split_load_spec(spec)
    count = 0
    batch: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as lines, _gc_paused():
        for line in lines:
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) >= batch_size:
                standin.put(dataset_id, batch, key=key)
                count, batch = count + len(batch), []
    if batch or count == 0:
        standin.put(dataset_id, batch, key=key)
    return count + len(batch)


def _split_load_spec(spec: str) -> tuple[str, str, str | None]:
    # At most three parts, so a system-field key survives: "f.ndjson:4mse-ku6q::id".
    parts = spec.split(":", 2)
    if len(parts) == 2:
        return parts[0], parts[1], None
    if len(parts) == 3:
        return parts[0], parts[1], parts[2] or None
    raise ValueError(f"--load expects FILE.ndjson:DATASET_ID[:KEY], got {spec!r}")


def _declare_spec(standin: SodaStandIn, spec: str) -> None:
    dataset_id, _, pairs = spec.partition(":")
    types = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    standin.declare(dataset_id, types)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the stand-in in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for the Socrata SODA 2.1 API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="FILE.ndjson:DATASET_ID[:KEY]",
        help="preload records (repeatable); with KEY later loads replace matching records",
    )
    parser.add_argument(
        "--declare",
        action="append",
        default=[],
        metavar="DATASET_ID:FIELD=TYPE[,FIELD=TYPE]",
        help="declare column types: number, text, timestamp, boolean, location (repeatable)",
    )
    parser.add_argument(
        "--contracts",
        metavar="DIR",
        help="declare the column types of every data contract in DIR (e.g. include/contracts)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    standin = SodaStandIn(args.host, args.port)
    if args.contracts:
        from citypulse.contracts.contract import load_contracts
        from citypulse_dev.standin.catalog import declare_contracts

        contracts, errors = load_contracts(Path(args.contracts))
        for error in errors:
            logger.warning("skipping a broken contract: %s", error)
        declare_contracts(standin, contracts)
    for spec in args.declare:
        _declare_spec(standin, spec)
    for spec in args.load:
        logger.info("loaded %d records from %s", load_ndjson(standin, spec), spec)
    stop = threading.Event()
    # SIGTERM (how Airflow and CI stop helpers) should shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = standin.start()
    logger.info("SODA stand-in listening on %s", url)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        logger.info("stopping")
        standin.stop()


if __name__ == "__main__":
    main()
