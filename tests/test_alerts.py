"""Failure alerts (citypulse.dags.alerts): one greppable line, a webhook when configured, and
no secret of the webhook's URL in either, even when the webhook is down."""

from __future__ import annotations

import json
import logging
import socket
from types import SimpleNamespace
from typing import Any

import pytest

SECRET_PATH = "T0AAA/B0BBB/xq7SecretPathPart9k"
SECRET_KEY = "k3y-Q29uZmlkZW50aWFsS2V5"


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="nyc_311", task_id="load", run_id="manual__1", try_number=1)
    return {"task_instance": ti, "exception": RuntimeError("the load failed")}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook/{path}?key={key}",
        "http://alerts:{key}@127.0.0.1:{port}/services/{path}",
    ],
    ids=["path-and-query", "userinfo-and-path"],
)
def test_a_webhook_that_is_down_leaks_no_part_of_its_url(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    from citypulse.dags.alerts import on_failure_alert

    hook = url.format(port=_closed_port(), path=SECRET_PATH, key=SECRET_KEY)
    connection = {"conn_type": "http", "host": hook}
    monkeypatch.setenv("AIRFLOW_CONN_CITYPULSE_ALERTS", json.dumps(connection))
    with caplog.at_level(logging.DEBUG):
        on_failure_alert(_context())
    # Once Airflow's masker is loaded, its logging setup may route records to the stream.
    logged = caplog.text + "\n".join(capfd.readouterr())
    failed = [line for line in logged.splitlines() if "webhook failed" in line]
    assert failed, logged  # the webhook was tried and its failure reported...
    assert "ConnectionError" in failed[0] and "127.0.0.1" in failed[0]  # ...saying why
    for secret in (SECRET_PATH, SECRET_KEY, "xq7SecretPathPart9k"):
        assert secret not in logged


def test_redact_hides_every_part_of_a_remembered_url() -> None:
    from citypulse.secrets import redact, remember_url

    remember_url(f"https://u:{SECRET_KEY}@hooks.example.org/services/{SECRET_PATH}?sig=abcdef123")
    shown = redact(
        "HTTPSConnectionPool(host='hooks.example.org', port=443): Max retries exceeded with "
        f"url: /services/{SECRET_PATH}?sig=abcdef123 (Caused by ...) user={SECRET_KEY}"
    )
    assert SECRET_PATH not in shown and "abcdef123" not in shown and SECRET_KEY not in shown
    assert "hooks.example.org" in shown  # a host alone is no secret: the error stays useful
