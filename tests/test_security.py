"""User stories for security: the Socrata app token and the warehouse password never reach a
task log; hostile Params and portal values never reach SoQL or SQL unchecked; analysts get a
read-only role that sees the views and nothing else.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from conftest import query
from helpers import run_city_day, seed_days

pytestmark = [pytest.mark.integration]

DAY = date.today() - timedelta(days=50)
TOKEN = "tok-c2VjcmV0LWFwcC10b2tlbg"
PASSWORD = "pw-d2FyZWhvdXNlLXBhc3N3b3Jk"


def test_secrets_never_reach_the_logs_of_a_full_run(
    dagbag: Any,
    standin: Any,
    fresh_warehouse: str,
    contracts: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capfd: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from psycopg2.extensions import parse_dsn

    contract = next(c for c in contracts if c.dag_id == "nyc_311")
    parts = parse_dsn(fresh_warehouse)
    # Trust auth ignores the password, but the connection carries it like a real one.
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": parts.get("host", "127.0.0.1"),
                "port": int(parts.get("port", 5432)),
                "login": parts.get("user", "postgres"),
                "password": PASSWORD,
                "schema": parts["dbname"],
            }
        ),
    )
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    seed_days(standin, contract, [DAY], seed=51)
    standin.requests_log.clear()
    run = run_city_day(dagbag.dags[contract.dag_id], contract, DAY)
    assert str(run.state) == "success"
    assert any(r.app_token_present for r in standin.requests_log)  # the token was used
    captured = capfd.readouterr()
    logs = [captured.out, captured.err, caplog.text]
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    logs += [p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file()]
    everything = "\n".join(logs)
    assert "extract" in everything  # the logs really were captured
    assert TOKEN not in everything
    assert PASSWORD not in everything


@pytest.mark.parametrize(
    "conf",
    [
        {"start_date": "2024-01-01' OR 1=1 --"},
        {"start_date": "2024-01-01", "end_date": "2024-01-02; DROP TABLE citypulse.rejects"},
        {"start_date": "2024-13-45"},
        {"reconcile": "yes; DELETE"},
    ],
)
def test_hostile_params_are_refused_before_any_task_runs(
    dagbag: Any, standin: Any, warehouse: str, conf: dict[str, Any]
) -> None:
    standin.requests_log.clear()
    with pytest.raises(Exception, match=r"(?i)param|date|valid"):
        dagbag.dags["chicago_crime"].test(run_conf=conf)
    assert standin.requests_log == []


def test_portal_values_going_back_into_soql_are_checked(contracts: list[Any]) -> None:
    from citypulse.pipeline.extract import changes_where
    from citypulse.pipeline.windows import window_for_dates

    contract = next(c for c in contracts if c.dag_id == "chicago_crime")
    window = window_for_dates("2025-01-01", "2025-01-01", contract.timezone)
    upper = "2025-01-02T00:00:00.000"
    for bad in ("2025-01-01T00:00:00.000' OR '1'='1", "x"):
        with pytest.raises(ValueError, match="refusing watermark"):
            changes_where(contract, window, bad, upper)
        with pytest.raises(ValueError, match="refusing watermark"):
            changes_where(contract, window, "2025-01-01T00:00:00.000", bad)
    assert changes_where(contract, window, "2025-01-01T00:00:00.000", upper) == (
        "updated_on >= '2025-01-01T00:00:00.000' AND updated_on <= '2025-01-02T00:00:00.000' "
        "AND date < '2025-01-01T00:00:00.000'"
    )


def test_reader_role_selects_views_and_nothing_else(
    fresh_warehouse: str, contracts: list[Any]
) -> None:
    from citypulse.pipeline.views import build_views
    from citypulse.warehouse.connection import connect

    with connect() as conn, conn.cursor() as cur:
        build_views(cur, contracts[0], contracts)
    conn = psycopg2.connect(fresh_warehouse)
    try:
        with conn.cursor() as cur:
            cur.execute("SET ROLE citypulse_reader")
            cur.execute("SELECT count(*) FROM citypulse.incidents")
            assert cur.fetchone() == (0,)
            cur.execute("SELECT count(*) FROM citypulse.pipeline_health")
            for statement in (
                "SELECT count(*) FROM citypulse.chicago_crime",
                "SELECT count(*) FROM citypulse.ingest_runs",
                "SELECT count(*) FROM citypulse.rejects",
                "INSERT INTO citypulse.watermarks VALUES ('x', 'c', 'v', 'r')",
                "DELETE FROM citypulse.incidents",
            ):
                cur.execute("SAVEPOINT probe")
                with pytest.raises(psycopg2.Error) as caught:
                    cur.execute(statement)
                assert (
                    isinstance(
                        caught.value,
                        psycopg2.errors.InsufficientPrivilege
                        | psycopg2.errors.ObjectNotInPrerequisiteState,
                    )
                    or "permission denied" in str(caught.value)
                    or "cannot delete" in str(caught.value)
                ), statement
                cur.execute("ROLLBACK TO SAVEPOINT probe")
    finally:
        conn.rollback()
        conn.close()
    assert query(
        fresh_warehouse,
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
        ("citypulse_reader",),
    ) == [(False,)]
