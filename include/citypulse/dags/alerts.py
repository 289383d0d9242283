"""Failure alerts an operator's tooling can match: one log line, and an optional webhook."""

from __future__ import annotations

import json
import logging
from typing import Any

from citypulse.secrets import redact, remember, remember_url

ALERT_CONN_ID = "citypulse_alerts"
# The logger name operators filter on; it predates the package layout.
log = logging.getLogger("citypulse.alerts")


def alert_payload(context: Any) -> dict[str, str]:
    """What failed, where and why, from an Airflow callback context."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    return {
        "dag_id": str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "")),
        "task_id": str(getattr(ti, "task_id", "")),
        "run_id": str(getattr(dag_run, "run_id", "") or getattr(ti, "run_id", "")),
        "try_number": str(getattr(ti, "try_number", "")),
        "reason": redact(str(context.get("exception") or context.get("reason") or "unknown")),
    }


def on_failure_alert(context: Any) -> None:
    """Log `CITYPULSE_ALERT ...`; POST it to the `citypulse_alerts` HTTP connection if set."""
    payload = alert_payload(context)
    log.error("CITYPULSE_ALERT %s", json.dumps(payload, sort_keys=True))
    _post_webhook(payload)


def warning_alert(payload: dict[str, str]) -> None:
    """Log `CITYPULSE_ALERT ...` at warning level (with `"level": "warning"`): something an
    operator must act on while the run goes on (schema drift); POST it like a failure's."""
    body = {**payload, "reason": redact(payload.get("reason", "")), "level": "warning"}
    log.warning("CITYPULSE_ALERT %s", json.dumps(body, sort_keys=True))
    _post_webhook(body)


async def on_deadline_missed(**kwargs: Any) -> None:
    """Deadline callback (runs in the triggerer): the daily run is late; alert like a failure."""
    import asyncio

    context = kwargs.pop("context", None) or {}
    dag_run = context.get("dag_run") if isinstance(context, dict) else None
    payload = {
        "dag_id": str(kwargs.get("dag_id") or getattr(dag_run, "dag_id", "")),
        "task_id": "",
        "run_id": str(getattr(dag_run, "run_id", "") or ""),
        "try_number": "",
        "reason": f"deadline missed: not finished {kwargs.get('hours', '?')} h after queueing",
    }
    log.error("CITYPULSE_ALERT %s", json.dumps(payload, sort_keys=True))
    await asyncio.to_thread(_post_webhook, payload)


def _post_webhook(payload: dict[str, str]) -> None:
    failure = None
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = BaseHook.get_connection(ALERT_CONN_ID)
        except AirflowNotFoundException:
            return
        if conn.host:
            import requests

            # A webhook URL often is the credential (Slack, Teams): never shown anywhere.
            url = _webhook_url(conn.host, conn.schema)
            remember(conn.password)
            remember_url(url)
            body = {key: redact(value) for key, value in payload.items()}
            requests.post(url, json=body, timeout=10)
    except Exception as exc:  # an alert must never mask what it reports
        failure = redact(f"{type(exc).__name__}: {exc}")
    if failure is not None:
        # Logged outside the handler, so no traceback of it can reach a log (a handler that
        # fails prints the exception being handled): the webhook's URL would be in it.
        log.error("CITYPULSE_ALERT webhook failed: %s", failure)


def _webhook_url(host: str, scheme: str | None) -> str:
    """The connection's host is the webhook URL; a bare host gets the schema as scheme."""
    return host if "://" in host else f"{scheme or 'https'}://{host}"
