"""The secrets CityPulse holds (the app token, connection passwords) and what hides them.

Every secret a task reads is remembered here and handed to Airflow's masker; `redact` takes
them out of any text CityPulse itself logs, raises, alerts or posts, so none depends on
Airflow's masking (which `airflow dags test` does not apply).
"""

from __future__ import annotations

import logging

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


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by `***` (longest first)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
