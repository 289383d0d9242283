"""Settings read once from the environment; paths derived from the project layout."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
CONTRACTS_DIR = Path(os.environ.get("CITYPULSE_CONTRACTS_DIR", INCLUDE_DIR / "contracts"))
SQL_DIR = INCLUDE_DIR / "sql"

# Where run-scoped extract files and the embedded PostgreSQL live.
DATA_DIR = Path(os.environ.get("CITYPULSE_DATA_DIR", PROJECT_ROOT / ".citypulse"))
RUNS_DIR = DATA_DIR / "runs"
PGSERVER_DIR = DATA_DIR / "pgdata"
# What parsing dags/ keeps of the validated contracts between parses; empty disables it.
_PARSE_CACHE = os.environ.get("CITYPULSE_PARSE_CACHE_FILE", str(DATA_DIR / "cache" / "dags.json"))
PARSE_CACHE_FILE = Path(_PARSE_CACHE) if _PARSE_CACHE else None

WAREHOUSE_CONN_ID = "warehouse"
SOCRATA_CONN_ID = "socrata"
# When set (e.g. http://127.0.0.1:8765) every portal is redirected to this base URL.
SOCRATA_BASE_URL_ENV = "SOCRATA_BASE_URL"
SOCRATA_APP_TOKEN_ENV = "SOCRATA_APP_TOKEN"

SCHEMA = os.environ.get("CITYPULSE_SCHEMA", "citypulse")
SOCRATA_POOL = "socrata_api"

IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]*$"

# First retry delay of every task (doubling after each try); tests shorten it.
RETRY_DELAY_SECONDS = float(os.environ.get("CITYPULSE_RETRY_DELAY_SECONDS", "60"))
