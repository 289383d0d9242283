"""Parsing `dags/`: the four city DAGs, their shape, and what parsing must never do.

Each parse runs in a fresh interpreter, as Airflow's DAG processor does, so the modules it
imports and the sockets it opens are its own.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITY_DAGS = {"chicago_crime", "montgomery_traffic", "nyc_311", "seattle_crime"}
HEAVY = ("pandas", "great_expectations", "sklearn", "h3", "sodapy", "psycopg2", "numpy")

PARSE_SCRIPT = r"""
import json, socket, sys
opened = []
_connect = socket.socket.connect
def _spy(self, address):
    opened.append(repr(address))
    raise OSError("parsing must not open connections")
socket.socket.connect = _spy
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in __HEAVY__ if m in sys.modules)
deadlines = {
    d: [(str(a.reference), a.interval.total_seconds()) for a in (bag.dags[d].deadline or [])]
    for d in bag.dags
}
print(json.dumps({
    "deadlines": deadlines,
    "dags": sorted(bag.dags),
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "heavy": heavy,
    "sockets": opened,
    "validated": "citypulse.contracts.contract" in sys.modules,
}))
""".replace("__HEAVY__", repr(HEAVY))


def parse(extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse dags/ in a fresh interpreter; the parse cache lives in the session's data dir."""
    env = {**os.environ, **(extra_env or {})}
    env.pop("AIRFLOW_CONN_WAREHOUSE", None)
    env["AIRFLOW_CONN_WAREHOUSE"] = "postgresql://u:p@10.255.255.1:5432/db"  # must go unused
    out = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(ROOT / "dags")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return parse()


def test_no_import_errors_and_exactly_the_city_dags(parsed: dict[str, Any]) -> None:
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) >= CITY_DAGS
    assert set(parsed["dags"]) - CITY_DAGS <= {"hotspot_retrain"}


def test_every_city_dag_has_a_deadline_alert(parsed: dict[str, Any], contracts: list[Any]) -> None:
    for contract in contracts:
        (alert,) = parsed["deadlines"][contract.dag_id]
        assert "DAGRUN_QUEUED_AT" in alert[0].upper() or "QUEUED" in alert[0].upper()
        assert alert[1] == contract.deadline_hours * 3600


def test_parsing_imports_no_heavy_module_and_opens_no_connection(parsed: dict[str, Any]) -> None:
    assert parsed["heavy"] == []
    assert parsed["sockets"] == []


def test_the_factory_file_parses_without_the_taskflow_decorators() -> None:
    """Story: the scheduler parses the city DAGs often; the TaskFlow decorators would import
    the standard provider and `packaging` on every parse, most of the file's parse time."""
    script = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        "bag = DagBag(dag_folder=sys.argv[1]); assert not bag.import_errors, bag.import_errors; "
        "print(len(bag.dags), 'airflow.sdk.definitions.decorators' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "dags" / "city_pipelines.py")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split()[-2:] == [str(len(CITY_DAGS)), "False"]


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return bag


@pytest.mark.parametrize("dag_id", sorted(CITY_DAGS))
def test_city_dag_shape(dagbag: Any, contracts: list[Any], dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    contract = next(c for c in contracts if c.dag_id == dag_id)
    order = ["extract", "validate", "load", "reconcile", "build_views"]
    assert sorted(t.task_id for t in dag.tasks) == sorted([*order, "housekeeping"])
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    sort = [t.task_id for t in dag.task_group.topological_sort()]
    assert [task for task in sort if task != "housekeeping"] == order
    # Housekeeping stands alone: it runs whatever becomes of the run's own tasks.
    housekeeping = dag.get_task("housekeeping")
    assert not housekeeping.upstream_task_ids and not housekeeping.downstream_task_ids
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert str(dag.timetable.timezone) == contract.timezone
    assert dag.timetable.expression == "0 0 * * *"
    assert dag.start_date.date() == contract.start_date
    assert dag.catchup is False
    assert "citypulse" in dag.tags and set(contract.tags) <= set(dag.tags)
    assert contract.title in dag.doc_md and contract.dataset_id in dag.doc_md
    assert dag.owner == contract.owner
    assert dag.on_failure_callback
    assert set(dag.params.keys()) == {"start_date", "end_date", "reconcile"}
    for task in dag.tasks:
        assert task.retries >= 2
        assert task.retry_exponential_backoff
        assert task.retry_delay == timedelta(seconds=0.5)  # CITYPULSE_RETRY_DELAY_SECONDS
    assert dag.get_task("extract").pool == dag.get_task("reconcile").pool == "socrata_api"
    assert {type(t).__name__ for t in dag.tasks} == {"CityStepOperator"}
    outlets = dag.get_task("load").outlets
    assert [o.uri for o in outlets] == [
        f"postgres://warehouse:5432/citypulse/citypulse/{contract.table}"
    ]


def test_broken_contract_names_file_and_field_and_others_still_load(tmp_path: Path) -> None:
    for source in (ROOT / "include" / "contracts").glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    broken = tmp_path / "seattle_crime.yaml"
    broken.write_text(
        broken.read_text().replace("timezone: America/Los_Angeles", "timezone: Mars/Olympus")
    )
    (tmp_path / "zz_not_a_mapping.yaml").write_text("- just\n- a list\n")
    result = parse({"CITYPULSE_CONTRACTS_DIR": str(tmp_path)})
    assert set(result["dags"]) & CITY_DAGS == CITY_DAGS - {"seattle_crime"}
    (message,) = result["errors"].values()
    assert "seattle_crime.yaml" in message
    assert "field 'timezone'" in message and "Mars/Olympus" in message
    assert "zz_not_a_mapping.yaml" in message
    # The next parse reads the parse cache instead of validating: the same DAGs, same error.
    again = parse({"CITYPULSE_CONTRACTS_DIR": str(tmp_path)})
    assert not again["validated"]
    assert (again["dags"], again["errors"]) == (result["dags"], result["errors"])


def test_datasets_without_a_place_only_still_parse_the_retrain_dag(tmp_path: Path) -> None:
    """Story: a deployment holds only datasets without coordinates: every DAG parses, the
    weekly retrain included (it has no city to offer, and its runs retrain none)."""
    from citypulse_dev.contract_copies import write_copies

    written = write_copies(tmp_path / "contracts", 2, unplaced_every=1)
    result = parse(
        {
            "CITYPULSE_CONTRACTS_DIR": str(tmp_path / "contracts"),
            "CITYPULSE_PARSE_CACHE_FILE": str(tmp_path / "parse.json"),
        }
    )
    assert result["errors"] == {}
    assert set(result["dags"]) == {p.stem for p in written} | {"hotspot_retrain"}


def test_a_parse_on_a_warm_cache_does_not_validate_contracts(parsed: dict[str, Any]) -> None:
    parse()  # warms the cache, whichever contracts folder another test parsed last
    again = parse()
    assert not again["validated"]  # the pydantic models are not even imported
    assert again["dags"] == parsed["dags"] and again["errors"] == {}
