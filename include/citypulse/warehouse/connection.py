"""The warehouse connection: Airflow connection `warehouse`, else an embedded PostgreSQL
where that is safe.

Connection details come from Airflow (UI, `AIRFLOW_CONN_WAREHOUSE`, a secrets backend); the
password is never logged. With no `warehouse` connection configured, CityPulse starts (or
reuses) an embedded PostgreSQL server (`pgserver`) in the project's data folder, but only
where every task runs on this machine: Airflow's executor is the LocalExecutor (`airflow
standalone`, `airflow dags test`, `make demo`, the tests), or `CITYPULSE_EMBEDDED_WAREHOUSE`
says so. With any other executor (Celery, Kubernetes, ...) each worker would write to a
private database on its own disk and the run would look green: there a task fails at once
(`WarehouseNotConfigured`, no retries), naming the connection and how to set it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from citypulse.exceptions import WarehouseError
from citypulse.secrets import remember
from citypulse.settings import EMBEDDED_WAREHOUSE, PGSERVER_DIR, WAREHOUSE_CONN_ID
from citypulse.warehouse.types import Connection

if TYPE_CHECKING:
    from airflow.sdk import Connection as AirflowConnection

log = logging.getLogger(__name__)

# Executors whose tasks all run on the machine that schedules them.
LOCAL_EXECUTORS = frozenset({"LocalExecutor"})


class WarehouseNotConfigured(WarehouseError, AirflowFailException):
    """No `warehouse` connection where an embedded database would be private to one worker.
    Also an `AirflowFailException`: whichever task meets it fails at once, without retries."""


def executor_names() -> list[str]:
    """The class names of Airflow's configured executors (`[core] executor`: a list whose
    entries may be `alias:module.path.Class`)."""
    from airflow.configuration import conf

    configured = conf.get("core", "executor", fallback="LocalExecutor") or "LocalExecutor"
    return [entry.split(":")[-1].rsplit(".", 1)[-1].strip() for entry in configured.split(",")]


def embedded_allowed() -> bool:
    """Whether a missing `warehouse` connection may start the embedded PostgreSQL here."""
    if EMBEDDED_WAREHOUSE is not None:
        return EMBEDDED_WAREHOUSE
    return all(name in LOCAL_EXECUTORS for name in executor_names())


_EMBEDDED: dict[Path, Any] = {}


def embedded_dsn(pgdata: Path = PGSERVER_DIR) -> str:
    """Start (or reuse) the embedded server in `pgdata`; it outlives this process."""
    if pgdata not in _EMBEDDED:
        import pgserver

        # pgserver narrates every command at INFO, also from atexit after logging closed.
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        pgdata.mkdir(parents=True, exist_ok=True)
        _EMBEDDED[pgdata] = pgserver.get_server(pgdata, cleanup_mode=None)
        log.info(
            "using the embedded PostgreSQL in %s (no '%s' connection)", pgdata, WAREHOUSE_CONN_ID
        )
    return str(_EMBEDDED[pgdata].get_uri())


def stop_embedded(pgdata: Path = PGSERVER_DIR) -> bool:
    """Stop the embedded server of `pgdata` if one runs; True if it was running."""
    from pgserver import _commands

    if not (pgdata / "postmaster.pid").exists():
        return False
    import os

    user = "pgserver" if os.geteuid() == 0 else None
    # pg_ctl is generated at import time in pgserver, hence invisible to mypy.
    _commands.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=user)  # type: ignore[attr-defined]
    _EMBEDDED.pop(pgdata, None)
    return True


def _dsn_from_connection(conn: AirflowConnection) -> str:
    from psycopg2.extensions import make_dsn

    extra = conn.extra_dejson or {}
    options = {k: v for k, v in extra.items() if k in ("sslmode", "sslrootcert", "options")}
    return str(
        make_dsn(
            host=conn.host or None,
            port=conn.port or None,
            dbname=conn.schema or "postgres",
            user=conn.login or None,
            password=conn.password or None,
            application_name="citypulse",
            **options,
        )
    )


def warehouse_dsn() -> str:
    """The libpq DSN of the warehouse (contains the password: never log it)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        if embedded_allowed():
            return embedded_dsn()
        raise WarehouseNotConfigured(
            f"no Airflow connection '{WAREHOUSE_CONN_ID}': with the "
            f"{', '.join(executor_names())} tasks run on other machines, where an embedded "
            "PostgreSQL would be a private database on each worker. Create the connection "
            f"(Admin > Connections, `airflow connections add {WAREHOUSE_CONN_ID} --conn-uri "
            "postgresql://USER:PASSWORD@HOST:5432/DB`, or the environment variable "
            "AIRFLOW_CONN_WAREHOUSE on every component); on a single machine, "
            "CITYPULSE_EMBEDDED_WAREHOUSE=true allows the embedded one"
        ) from None
    if conn.conn_type not in ("postgres", "postgresql"):
        raise WarehouseError(
            f"connection '{WAREHOUSE_CONN_ID}' has type {conn.conn_type!r}; "
            "CityPulse needs a postgres connection"
        )
    remember(conn.password)
    return _dsn_from_connection(conn)


@contextmanager
def connect(dsn: str | None = None) -> Iterator[Connection]:
    """A psycopg2 connection in UTC; committed on success, rolled back on any error."""
    import psycopg2

    try:
        conn = psycopg2.connect(dsn or warehouse_dsn())
    except psycopg2.OperationalError as exc:
        # libpq's message may echo the DSN's host but never the password.
        raise WarehouseError(f"cannot connect to the warehouse: {exc}".strip()) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        yield conn
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except psycopg2.Error as rollback_error:
            # The connection died with the error being raised (the server stopped): nothing
            # was committed, and the error worth reporting is that one, not the rollback's.
            log.warning("rollback after a failed transaction failed too: %s", rollback_error)
        raise
    finally:
        conn.close()


def airflow_conn_json(dsn: str) -> str:
    """The JSON `AIRFLOW_CONN_*` form of a libpq DSN (keeps socket hosts intact), e.g. to
    point the `warehouse` connection at a database made for tests or benchmarks."""
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parts.get("host", "127.0.0.1"),
            "port": int(parts.get("port", 5432)),
            "login": parts.get("user", "postgres"),
            "password": parts.get("password", ""),
            "schema": parts["dbname"],
        }
    )
