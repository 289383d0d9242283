"""openlineage_events (the test helper that checks every OpenLineage event the end-to-end tests
receive): an event as CityPulse and the Airflow provider send it passes; each kind of malformed
event is rejected, naming the value at fault."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from openlineage_events import InvalidEvent, validate_events

WAREHOUSE = {"conn_type": "postgres", "host": "db.example", "port": 6543, "schema": "warehouse"}
LOAD_RESULT = {
    "extracted": 5,
    "loaded": 4,
    "rejected": 1,
    "inserted": 3,
    "updated": 1,
    "unchanged": 0,
    "seconds": 0.1,
    "audit_id": 9,
}
REPORT = {
    "extracted": 10,
    "rejected": 6,
    "expectations": [
        {
            "expectation": "expect_column_values_to_not_be_null",
            "column": "created_date",
            "success": False,
            "unexpected": 6,
            "unexpected_percent": 60.0,
        }
    ],
}


@pytest.fixture
def event(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A FAIL event of a city's validate task as the provider would serialize it: the portal
    dataset with the facets `citypulse.dags.lineage` gives a failed validation, the outputs of
    a load, the run and job facets Airflow's listener adds, CityPulse's `citypulseLoad`."""
    from airflow.providers.openlineage.plugins.facets import AirflowStateRunFacet
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import (
        documentation_job,
        error_message_run,
        job_type_job,
        parent_run,
    )
    from openlineage.client.serde import Serde

    from citypulse.dags.lineage import city_step_lineage
    from citypulse.exceptions import ValidationFailed
    from citypulse.pipeline.validate.outcome import ValidationReport

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(WAREHOUSE))
    failure = ValidationFailed("too many rejects", ValidationReport.from_json(REPORT))
    validate = city_step_lineage("validate", "nyc_311", error=failure)
    load = city_step_lineage("load", "nyc_311", result=LOAD_RESULT)
    parent_id = "01937f2e-4a1b-7c3d-8e9f-0a1b2c3d4e5f"
    run_event = RunEvent(
        eventType=RunState.FAIL,
        eventTime="2025-11-10T12:00:00.123456+00:00",
        run=Run(
            runId="01937f2e-4a1b-7c3d-8e9f-0a1b2c3d4e60",
            facets={
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message="too many rejects", programmingLanguage="python"
                ),
                "parent": parent_run.ParentRunFacet(
                    run=parent_run.Run(runId=parent_id),
                    job=parent_run.Job(namespace="citypulse", name="nyc_311"),
                ),
                "airflowState": AirflowStateRunFacet(
                    dagRunState="failed", tasksState={"validate": "failed"}, tasksDuration={}
                ),
            },
        ),
        job=Job(
            namespace="citypulse",
            name="nyc_311.validate",
            facets={
                "documentation": documentation_job.DocumentationJobFacet(description="validate"),
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="AIRFLOW", jobType="TASK"
                ),
            },
        ),
        inputs=validate.inputs,
        outputs=load.outputs,
    )
    return Serde.to_dict(run_event)


def test_an_event_as_citypulse_and_the_provider_send_it_is_valid(event: dict[str, Any]) -> None:
    assert validate_events([event]) == {
        "ErrorMessageRunFacet",
        "ParentRunFacet",
        "RunFacet",  # Airflow's own facets name the base definition
        "DocumentationJobFacet",
        "JobTypeJobFacet",
        "SchemaDatasetFacet",
        "DataQualityAssertionsDatasetFacet",
        "DataQualityMetricsInputDatasetFacet",
        "OutputStatisticsOutputDatasetFacet",
        "CityPulseLoadOutputDatasetFacet",
    }


def test_a_facet_of_another_version_of_its_definition_is_accepted(event: dict[str, Any]) -> None:
    schema = event["inputs"][0]["facets"]["schema"]
    schema["_schemaURL"] = schema["_schemaURL"].replace("/1-2-0/", "/1-1-1/")
    assert "SchemaDatasetFacet" in validate_events([event])


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path
        target: Any = event
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _delete(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path
        target: Any = event
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _move_output_statistics_to_the_inputs(event: dict[str, Any]) -> None:
    statistics = event["outputs"][0]["outputFacets"]["outputStatistics"]
    event["inputs"][0]["inputFacets"]["outputStatistics"] = statistics


PORTAL = ("inputs", 0)
TABLE_FACETS = ("outputs", 0, "outputFacets")
SYMLINKS = (
    "https://openlineage.io/spec/facets/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet"
)
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "missing runId": (
        _delete("run", "runId"),
        "event[0].run.runId: required by Run, missing",
    ),
    "runId not a UUID": (
        _set("run-17", "run", "runId"),
        "event[0].run.runId: Run refused 'run-17'",
    ),
    "eventTime not a date": (
        _set("yesterday noon", "eventTime"),
        "event[0].eventTime: RunEvent refused 'yesterday noon'",
    ),
    "eventTime without a time": (
        _set("2025-11-10", "eventTime"),
        "event[0].eventTime: RunEvent refused '2025-11-10': Parsed date-time has to contain time",
    ),
    "eventTime missing": (
        _delete("eventTime"),
        "event[0].eventTime: required by RunEvent, missing",
    ),
    "producer missing": (
        _delete("producer"),
        "event[0].producer: required by RunEvent, missing",
    ),
    "schemaURL of no event": (
        _set("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/Run", "schemaURL"),
        "event[0].schemaURL: 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/Run' "
        "names no OpenLineage event definition",
    ),
    "eventType not a state": (
        _set("DONE", "eventType"),
        "event[0].eventType: expected one of ['START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', "
        "'OTHER'], got 'DONE'",
    ),
    "unknown top-level field": (
        _set("COMPLETE", "evenType"),
        "event[0]: RunEvent has no field evenType",
    ),
    "dataset without a name": (
        _delete(*PORTAL, "name"),
        "event[0].inputs[0].name: required by InputDataset, missing",
    ),
    "schema facet field without name": (
        _delete(*PORTAL, "facets", "schema", "fields", 0, "name"),
        "event[0].inputs[0].facets.schema.fields[0].name: required by SchemaDatasetFacetFields, "
        "missing",
    ),
    "schema facet naming another definition": (
        _set(SYMLINKS, *PORTAL, "facets", "schema", "_schemaURL"),
        f"event[0].inputs[0].facets.schema._schemaURL: '{SYMLINKS}' is not the definition of "
        "SchemaDatasetFacet",
    ),
    "assertion success as a string": (
        _set("false", *PORTAL, "inputFacets", "dataQualityAssertions", "assertions", 0, "success"),
        "event[0].inputs[0].inputFacets.dataQualityAssertions.assertions[0].success: "
        "expected bool, got 'false'",
    ),
    "metrics without columnMetrics": (
        _delete(*PORTAL, "inputFacets", "dataQualityMetrics", "columnMetrics"),
        "event[0].inputs[0].inputFacets.dataQualityMetrics.columnMetrics: "
        "required by DataQualityMetricsInputDatasetFacet, missing",
    ),
    "null row count": (
        _set(None, *PORTAL, "inputFacets", "dataQualityMetrics", "rowCount"),
        "event[0].inputs[0].inputFacets.dataQualityMetrics.rowCount: expected a value (null is "
        "no OpenLineage value), got None",
    ),
    "outputStatistics rowCount as string": (
        _set("4", *TABLE_FACETS, "outputStatistics", "rowCount"),
        "event[0].outputs[0].outputFacets.outputStatistics.rowCount: expected int, got '4'",
    ),
    "outputStatistics among the input facets": (
        _move_output_statistics_to_the_inputs,
        "event[0].inputs[0].inputFacets.outputStatistics: OutputStatisticsOutputDatasetFacet is "
        "no InputDatasetFacet",
    ),
    "unknown facet without _schemaURL": (
        _set({"_producer": "https://example.com/x", "rows": 3}, *TABLE_FACETS, "rowsMoved"),
        "event[0].outputs[0].outputFacets.rowsMoved._schemaURL: expected a string (required), "
        "got None",
    ),
    "unknown facet without _producer": (
        _set({"_schemaURL": "https://example.com/x.json", "rows": 3}, *TABLE_FACETS, "rowsMoved"),
        "event[0].outputs[0].outputFacets.rowsMoved._producer: expected a string (required), "
        "got None",
    ),
    "citypulseLoad count as a string": (
        _set("3", *TABLE_FACETS, "citypulseLoad", "inserted"),
        "event[0].outputs[0].outputFacets.citypulseLoad.inserted: '3' is not of type 'integer'",
    ),
    "citypulseLoad without its audit id": (
        _delete(*TABLE_FACETS, "citypulseLoad", "auditId"),
        "event[0].outputs[0].outputFacets.citypulseLoad: 'auditId' is a required property",
    ),
    "error message without its language": (
        _delete("run", "facets", "errorMessage", "programmingLanguage"),
        "event[0].run.facets.errorMessage.programmingLanguage: required by ErrorMessageRunFacet, "
        "missing",
    ),
    "parent run id not a UUID": (
        _set("parent", "run", "facets", "parent", "run", "runId"),
        "event[0].run.facets.parent.run.runId: Run refused 'parent'",
    ),
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_a_malformed_event_is_rejected_naming_the_value_at_fault(
    event: dict[str, Any], broken: str
) -> None:
    change, message = BROKEN[broken]
    malformed = copy.deepcopy(event)
    change(malformed)
    with pytest.raises(InvalidEvent, match="^" + re.escape(message)):
        validate_events([malformed])
