"""The HTTP layer under both Socrata transports: one portal's origin and the transport
(`PortalAdapter`) that is the only way a session reaches it.

`PortalAdapter` sends nothing to another origin than the portal's (scheme, host, port: the
app token stays home, whatever a redirect says), holds every response to a total deadline
(connect and the whole body) and checks that a 200 is what its path answers: a query's rows
(SODA 2.1's JSON list of objects; SODA3's list, or an object with a `data` list) or the view
metadata's JSON object; anything else is a `BadResponse`, transient like a 5xx. Imported
only inside tasks (requests).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter

from citypulse.secrets import redact

_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadResponse(requests.RequestException):
    """A 200 that is not what was asked (a proxy's HTML page, text, rows where an object was
    due, nothing): transient, like a 5xx."""


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
            f"{shown_url(redirected_from)}: the portal redirected to {shown_url(url)}"
            if redirected_from
            else f"refused a request for {shown_url(url)}"
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
        url = shown_url(request.url)
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


def is_rows(body: Any) -> bool:
    """A JSON list of objects: SODA 2.1's (and often SODA3's) answer to a query."""
    return isinstance(body, list) and all(isinstance(row, dict) for row in body)


def soda3_rows(body: Any) -> list[dict[str, Any]] | None:
    """The rows of a SODA3 answer: a JSON list of objects, or an object whose `data` is one
    (public clients have seen both); None for anything else."""
    rows = body.get("data") if isinstance(body, dict) else body
    return rows if is_rows(rows) else None


def _is_soda3(body: Any) -> bool:
    return soda3_rows(body) is not None


# What a 200 must hold, by the path it answers: a query's rows, or the view's metadata.
_BODIES: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("/resource/", "a JSON list of records", is_rows),
    ("/api/v3/views/", "a JSON list of records (or an object with a `data` list)", _is_soda3),
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
        parsed = _with_long_integers_as_text(response)
    if parsed is None or not ok(parsed):
        kind = response.headers.get("Content-Type", "no content type")
        shown = redact(body[:200].decode("utf-8", errors="replace"))
        raise BadResponse(
            f"{url}: HTTP 200 ({kind}) but not {what}: {shown!r}",
            response=response,
        )


def _with_long_integers_as_text(response: Any) -> Any:
    """The body parsed with every JSON integer too long for Python to convert (over
    `sys.get_int_max_str_digits()` digits, a guard against quadratic parsing) kept as its
    digits, and the response's content rewritten so, for whoever reads it next (sodapy's
    `response.json()`): typing then rejects the value naming its column, instead of one value
    failing the request. None when the body is no JSON at all."""
    limit = sys.get_int_max_str_digits() or None

    def integer(text: str) -> int | str:
        return text if limit is not None and len(text.lstrip("-")) > limit else int(text)

    try:
        parsed = json.loads(response.content, parse_int=integer)
    except ValueError:
        return None
    response._content = json.dumps(parsed).encode()
    return parsed


def shown_url(url: str) -> str:
    """A URL as messages show it: no query (it may hold an app token), scrubbed."""
    parsed = urlparse(url)
    return redact(f"{parsed.scheme}://{parsed.netloc}{parsed.path}")
