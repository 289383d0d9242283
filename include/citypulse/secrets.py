"""The secrets CityPulse holds (the app token, connection passwords) and what hides them.

Every secret a task reads is remembered here and handed to Airflow's masker; `redact` takes
them out of any text CityPulse itself logs, raises, alerts or posts, so none depends on
Airflow's masking (which `airflow dags test` does not apply). A URL that is a credential (a
webhook's) is remembered by its parts too: libraries quote it in pieces (urllib3's "host=...,
port=...: Max retries exceeded with url: /path?query"), never whole.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

REDACTED = "***"
# Shorter values are too likely to occur by chance in ordinary text to be hidden by value.
_MIN_LENGTH = 4
_SECRETS: set[str] = set()


def remember(*values: str | None) -> None:
    """Hide these values from now on (and tell Airflow's masker)."""
    fresh = {v for v in values if v and len(v) >= _MIN_LENGTH} - _SECRETS
    if not fresh:
        return
    _SECRETS.update(fresh)
    try:
        from airflow.sdk.log import mask_secret

        for value in fresh:
            mask_secret(value)
    except Exception:  # outside a task (tools, tests): our own redaction still applies
        log.debug("Airflow's secret masker is not available here")


def remember_url(url: str | None) -> None:
    """Hide a URL that carries a secret: whole, and each part a message may quote apart from
    it (path with query, path, each query value, the userinfo's password). The host and the
    port stay visible: they name the server, and the secret is in the rest (Slack and Teams
    webhooks carry it in the path)."""
    if not url:
        return
    parts = urlsplit(url if "://" in url else f"//{url}")
    path_and_query = f"{parts.path}?{parts.query}" if parts.query else parts.path
    values = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    path = parts.path if parts.path != "/" else None
    remember(url, path_and_query, path, parts.password, *values)


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by `***` (longest first)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
