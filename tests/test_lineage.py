"""citypulse.dags.lineage: the OpenLineage datasets and facets of each task, from what it
returned or the error that failed it (the end-to-end story is tests/test_lineage_e2e.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import by_id

WAREHOUSE = {
    "conn_type": "postgres",
    "host": "db.example",
    "port": 6543,
    "login": "login-unit-4e2b",
    "password": "pw-unit-7c1d",
    "schema": "warehouse_db",
}


@pytest.fixture
def warehouse_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(WAREHOUSE))


def report_json() -> dict[str, Any]:
    return {
        "extracted": 10,
        "rejected": 6,
        "expectations": [
            {
                "expectation": "expect_column_values_to_not_be_null",
                "column": "created_date",
                "success": False,
                "unexpected": 6,
                "unexpected_percent": 60.0,
            },
            {
                "expectation": "expect_column_values_to_be_unique",
                "column": "unique_key",
                "success": True,
                "unexpected": 0,
                "unexpected_percent": 0.0,
            },
        ],
        "top_reasons": [["created_date: required value missing", 6]],
    }


def test_a_failed_validation_reports_the_verdicts_that_failed_it(contracts: list[Any]) -> None:
    """The FAIL event of `validate` carries the report of the validation that failed the
    task, however the step wrapped the error."""
    from airflow.sdk.exceptions import AirflowFailException

    from citypulse.dags.lineage import city_step_lineage
    from citypulse.exceptions import ValidationFailed
    from citypulse.pipeline.validate.outcome import ValidationReport

    contract = by_id(contracts, "nyc_311")
    failure = ValidationFailed("too many rejects", ValidationReport.from_json(report_json()))
    try:
        try:
            raise failure
        except ValidationFailed as exc:
            raise AirflowFailException(str(exc)) from exc
    except AirflowFailException as wrapped:
        lineage = city_step_lineage("validate", contract.dag_id, error=wrapped)
    (portal,) = lineage.inputs
    assert (portal.namespace, portal.name) == ("https://data.cityofnewyork.us", "erm2-nwe9")
    assertions = portal.inputFacets["dataQualityAssertions"].assertions
    assert [(a.assertion, a.column, a.success, a.actual) for a in assertions] == [
        ("expect_column_values_to_not_be_null", "created_date", False, "6"),
        ("expect_column_values_to_be_unique", "unique_key", True, "0"),
    ]
    metrics = portal.inputFacets["dataQualityMetrics"]
    assert metrics.rowCount == 10
    assert {c: m.nullCount for c, m in metrics.columnMetrics.items()} == {"created_date": 6}


def test_a_failed_extract_names_the_portal_without_counts(contracts: list[Any]) -> None:
    from citypulse.dags.lineage import city_step_lineage

    lineage = city_step_lineage("extract", "nyc_311", error=RuntimeError("portal down"))
    (portal,) = lineage.inputs
    assert portal.inputFacets == {}
    assert [f.name for f in portal.facets["schema"].fields] == [
        c.wire_name for c in by_id(contracts, "nyc_311").columns
    ]


def test_warehouse_relations_are_named_by_the_connection_without_credentials(
    warehouse_conn: None,
) -> None:
    from openlineage.client.serde import Serde

    from citypulse.dags.lineage import city_step_lineage

    result = {
        "extracted": 5,
        "loaded": 4,
        "rejected": 1,
        "inserted": 3,
        "updated": 1,
        "unchanged": 0,
        "seconds": 0.1,
        "audit_id": 9,
    }
    lineage = city_step_lineage("load", "nyc_311", result=result)
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("postgres://db.example:6543", "warehouse_db.citypulse.nyc_311"),
        ("postgres://db.example:6543", "warehouse_db.citypulse.rejects"),
    ]
    table = lineage.outputs[0].outputFacets
    assert table["outputStatistics"].rowCount == 4
    assert (table["citypulseLoad"].inserted, table["citypulseLoad"].auditId) == (3, 9)
    body = "".join(Serde.to_json(dataset) for dataset in lineage.outputs)
    assert WAREHOUSE["password"] not in body and WAREHOUSE["login"] not in body


def test_steps_without_datasets_report_none() -> None:
    from citypulse.dags.lineage import city_step_lineage, retrain_lineage

    for step in ("reconcile", "housekeeping"):
        lineage = city_step_lineage(step, "nyc_311", result={"due": False})
        assert (lineage.inputs, lineage.outputs) == ([], [])
    assert retrain_lineage("report", "nyc_311").inputs == []
    assert retrain_lineage("train", None).outputs == []


def test_every_city_task_and_retrain_city_task_defines_its_lineage(dagbag: Any) -> None:
    """The listener finds the facet methods on every city task and on the retrain's city
    tasks (mapped, so on the class the task is unmapped into)."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    from citypulse.dags.operators import CityStepOperator
    from citypulse.dags.retrain_task import RetrainTaskOperator

    manager = ExtractorManager()
    for task in dagbag.dags["nyc_311"].tasks:
        assert isinstance(task, CityStepOperator) and task.step_name == task.task_id
        assert manager.get_extractor_class(task) is manager.default_extractor
    retrain = dagbag.dags["hotspot_retrain"]
    for task_id in ("city.check_freshness", "city.train", "city.predict"):
        task = retrain.get_task(task_id)
        assert task.operator_class is RetrainTaskOperator


def test_a_retrain_task_knows_its_city_from_its_argument_or_hand_off() -> None:
    from citypulse.dags.retrain_task import RetrainTaskOperator

    def noop(*_: Any) -> None:
        return None

    by_argument = RetrainTaskOperator(
        task_id="a", python_callable=noop, op_args=["nyc_311"], op_kwargs={}
    )
    by_hand_off = RetrainTaskOperator(
        task_id="b", python_callable=noop, op_args=[{"city": "seattle_crime"}], op_kwargs={}
    )
    assert (by_argument.city(), by_hand_off.city()) == ("nyc_311", "seattle_crime")
