"""Settings read once from the environment; paths derived from the project layout.

The **project** is the folder that holds `dags/` and `include/contracts/`: the checkout this
package runs from (an editable install, `make venv`), else the folder above Airflow's DAGs
folder (`AIRFLOW__CORE__DAGS_FOLDER`, else `$AIRFLOW_HOME/dags`), as in the Docker image where
the package is installed and the project lies in /opt/airflow.
"""

from __future__ import annotations

import os
from pathlib import Path

# The SQL CityPulse runs ships inside the package (package data), whatever the install.
SQL_DIR = Path(__file__).resolve().parent / "sql"


def _project_root() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "dags").is_dir() and (checkout / "include" / "contracts").is_dir():
        return checkout
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or str(
        Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "dags"
    )
    return Path(dags_folder).expanduser().resolve().parent


PROJECT_ROOT = _project_root()
CONTRACTS_DIR = Path(
    os.environ.get("CITYPULSE_CONTRACTS_DIR") or PROJECT_ROOT / "include" / "contracts"
)

# This machine's own folder: the embedded PostgreSQL, the parse cache, the default storage.
DATA_DIR = Path(os.environ.get("CITYPULSE_DATA_DIR", PROJECT_ROOT / ".citypulse"))
PGSERVER_DIR = DATA_DIR / "pgdata"
# The one root for everything tasks hand each other (run files, model artifacts): any URL
# Airflow's Object Storage accepts, e.g. s3://<aws_conn_id>@<bucket>/<prefix>. The default
# is this machine's disk, which serves one machine (or a folder every worker mounts).
STORAGE_URL = os.environ.get("CITYPULSE_STORAGE_URL", "").strip() or DATA_DIR.as_uri()
# How long a run's files are kept after its last write, so any of its tasks can be cleared
# and rerun; housekeeping removes them afterwards.
RUN_RETENTION_DAYS = float(os.environ.get("CITYPULSE_RUN_RETENTION_DAYS", "7"))
# Records per extract part: the unit run files are written, read and streamed in.
PART_ROWS = int(os.environ.get("CITYPULSE_PART_ROWS", "100000"))
# Records validate types, checks and writes at a time (a part is split into chunks of at most
# this many): with the part size, what bounds the memory of `validate`, whatever the window.
CHUNK_ROWS = int(os.environ.get("CITYPULSE_CHUNK_ROWS", "50000"))
# How validate checks the contract's expectations: `vectorized` (pandas/NumPy, the verdicts
# Great Expectations gives; GX itself for what it cannot check alike) or `gx` (every chunk
# through Great Expectations, as before; slower, and 130 MiB more in the task process).
VALIDATE_ENGINE = os.environ.get("CITYPULSE_VALIDATE_ENGINE", "vectorized").strip()
# What parsing dags/ keeps of the validated contracts between parses; empty disables it.
_PARSE_CACHE = os.environ.get("CITYPULSE_PARSE_CACHE_FILE", str(DATA_DIR / "cache" / "dags.json"))
PARSE_CACHE_FILE = Path(_PARSE_CACHE) if _PARSE_CACHE else None

WAREHOUSE_CONN_ID = "warehouse"
# Whether a missing `warehouse` connection may start the embedded PostgreSQL: true or false;
# unset, only where Airflow's executor runs every task on this machine (LocalExecutor).
_EMBEDDED = os.environ.get("CITYPULSE_EMBEDDED_WAREHOUSE", "").strip().lower()
EMBEDDED_WAREHOUSE = None if not _EMBEDDED else _EMBEDDED in ("1", "true", "yes", "on")
SOCRATA_CONN_ID = "socrata"
# When set (e.g. http://127.0.0.1:8765) every portal is redirected to this base URL.
SOCRATA_BASE_URL_ENV = "SOCRATA_BASE_URL"
SOCRATA_APP_TOKEN_ENV = "SOCRATA_APP_TOKEN"
# Which Socrata API reads a dataset (a contract's `api:` overrides it): soda2 (SODA 2.1,
# `/resource/`), soda3 (`/api/v3/views/<id>/query.json`, an app token required) or auto
# (SODA3 when an app token is configured, else SODA 2.1 with a warning). Read when a client
# opens, so a deployment can switch without a restart of the parser.
SODA_API_ENV = "CITYPULSE_SODA_API"
SODA_API_CHOICES = ("soda2", "soda3", "auto")

SCHEMA = os.environ.get("CITYPULSE_SCHEMA", "citypulse")
SOCRATA_POOL = "socrata_api"

IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]*$"

# First retry delay of every task (doubling after each try); tests shorten it.
RETRY_DELAY_SECONDS = float(os.environ.get("CITYPULSE_RETRY_DELAY_SECONDS", "60"))
