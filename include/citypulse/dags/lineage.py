"""OpenLineage for CityPulse's tasks: the datasets each one read and wrote, with what it found.

The OpenLineage provider's listener asks an operator for its lineage through
`get_openlineage_facets_on_start/complete/failure` (`CityStepOperator`, `RetrainTaskOperator`);
those call `city_step_lineage` and `retrain_lineage` here. The listener exists only when a
transport is configured (`AIRFLOW__OPENLINEAGE__TRANSPORT`, ...): otherwise nothing here is
imported or run. Every count and verdict comes from what the task returned (its XCom: the run
manifest, the load's audit, the views built, the retrain's hand-off) or from the error it
raised (a failed validation's report), never from a second query.

Names:

- a Socrata dataset: namespace `https://<portal>` (the contract's portal, also when
  `SOCRATA_BASE_URL` sends the requests to a stand-in), name its 4x4 id;
- a warehouse table or view: the namespace and name the postgres provider gives the same
  relation when it parses a query (`SQLExecuteQueryOperator`, `PostgresHook`):
  `postgres://<host>:<port>` and `<database>.<schema>.<table>`, formed here by the provider's
  own functions (`PostgresHook.get_openlineage_database_info`, `SQLParser.create_namespace`,
  `sqlparser.from_table_meta`), so lineage joins up across DAGs.

Nothing secret is put in an event: namespaces hold a host and port, never a login, password,
app token or webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    OutputDatasetFacet,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.generated.data_quality_assertions_dataset import (
    DataQualityAssertionsDatasetFacet,
)
from openlineage.client.generated.data_quality_metrics_input_dataset import (
    DataQualityMetricsInputDatasetFacet,
)

from citypulse.settings import SCHEMA, WAREHOUSE_CONN_ID

if TYPE_CHECKING:
    from citypulse.contracts.contract import Contract
    from citypulse.pipeline.validate.outcome import ValidationReport

# The custom facet's JSON schema (docs/openlineage/), named by a URN: it is not published.
LOAD_FACET = "citypulseLoad"
LOAD_FACET_SCHEMA_URL = (
    "urn:citypulse:openlineage:facets:1-0-0:CityPulseLoadOutputDatasetFacet.json"
    "#/$defs/CityPulseLoadOutputDatasetFacet"
)
# The shared tables a step writes besides the city's own.
REJECTS_TABLE = "rejects"
AUDIT_TABLE = "ingest_runs"
REGISTRY_TABLES = ("model_runs", "retrain_gates", "hotspot_publication")
FORECAST_TABLE = "hotspot_predictions"


@attr.define
class CityPulseLoadOutputDatasetFacet(OutputDatasetFacet):
    """What one load did to its table: rows inserted, updated, left unchanged, and the
    records of the run quarantined in `rejects`, with the audit row that records them."""

    inserted: int
    updated: int
    unchanged: int
    rejected: int
    auditId: int  # OpenLineage facets are camelCase

    _additional_skip_redact: ClassVar[list[str]] = [
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "auditId",
    ]

    @staticmethod
    def _get_schema() -> str:
        return LOAD_FACET_SCHEMA_URL


@dataclass(frozen=True)
class Warehouse:
    """Where the warehouse's relations live, as the postgres provider names them."""

    namespace: str
    database: str | None

    def dataset_name(self, relation: str) -> str:
        from airflow.providers.openlineage.sqlparser import from_table_meta
        from openlineage.common.sql import DbTableMeta

        named = from_table_meta(
            DbTableMeta(f"{SCHEMA}.{relation}"), self.database, self.namespace, False
        )
        return str(named.name)

    def input(self, relation: str, **facets: Any) -> InputDataset:
        return InputDataset(
            namespace=self.namespace, name=self.dataset_name(relation), facets=facets or {}
        )

    def output(
        self,
        relation: str,
        facets: Mapping[str, Any] | None = None,
        output_facets: Mapping[str, Any] | None = None,
    ) -> OutputDataset:
        return OutputDataset(
            namespace=self.namespace,
            name=self.dataset_name(relation),
            facets=dict(facets or {}),
            outputFacets=dict(output_facets or {}),
        )


def warehouse_connection() -> Any:
    """The `warehouse` connection; without one, a connection describing the embedded server
    the task used (host, port, database: no credentials)."""
    from airflow.sdk import BaseHook, Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        from psycopg2.extensions import parse_dsn

        from citypulse.warehouse.connection import warehouse_dsn

        parts = parse_dsn(warehouse_dsn())
        return Connection(
            conn_id=WAREHOUSE_CONN_ID,
            conn_type="postgres",
            host=parts.get("host"),
            port=int(parts.get("port") or 5432),
            schema=parts.get("dbname"),
        )


def warehouse() -> Warehouse:
    """The warehouse's namespace and database, through the postgres provider."""
    from airflow.providers.openlineage.sqlparser import SQLParser
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    info = PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID).get_openlineage_database_info(
        warehouse_connection()
    )
    return Warehouse(SQLParser.create_namespace(info), info.database)


def schema_facet(
    fields: Iterable[tuple[str, str, str | None]],
) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=name, type=type_, description=description or None
            )
            for name, type_, description in fields
        ]
    )


def portal_schema(contract: Contract) -> schema_dataset.SchemaDatasetFacet:
    """The portal's fields the contract reads (wire names), with the contract's types."""
    return schema_facet((c.wire_name, c.type, c.description) for c in contract.columns)


def table_schema(contract: Contract) -> schema_dataset.SchemaDatasetFacet:
    """The typed table's columns: the contract's, then the standard ones."""
    from citypulse.warehouse.tables import CHANGED_AT, STANDARD_COLUMNS

    standard = [(name, definition.split()[0], None) for name, definition in STANDARD_COLUMNS]
    return schema_facet(
        [
            *((c.name, c.type, c.description) for c in contract.columns),
            *standard,
            (CHANGED_AT, "timestamptz", None),
        ]
    )


def portal_dataset(contract: Contract, **input_facets: Any) -> InputDataset:
    """The contract's Socrata dataset, with its schema and `input_facets`."""
    return InputDataset(
        namespace=f"https://{contract.portal}",
        name=contract.dataset_id,
        facets={"schema": portal_schema(contract)},
        inputFacets=input_facets,
    )


def quality_facets(contract: Contract, report: ValidationReport) -> dict[str, Any]:
    """Every expectation's verdict and the run's metrics: its row count and, per required
    column, the nulls its not-null expectation counted."""
    assertions = [
        data_quality_assertions_dataset.Assertion(
            assertion=outcome.expectation,
            success=outcome.success,
            column=outcome.column,
            actual=str(outcome.unexpected),
            params={"unexpected": outcome.unexpected},
        )
        for outcome in report.expectations
    ]
    nulls = {
        outcome.column: outcome.unexpected
        for outcome in report.expectations
        if outcome.expectation == "expect_column_values_to_not_be_null" and outcome.column
    }
    required = [c.name for c in contract.columns if c.required]
    metrics = {
        column: data_quality_metrics_input_dataset.ColumnMetrics(nullCount=nulls[column])
        for column in required
        if column in nulls
    }
    return {
        "dataQualityAssertions": DataQualityAssertionsDatasetFacet(assertions=assertions),
        "dataQualityMetrics": DataQualityMetricsInputDatasetFacet(
            columnMetrics=metrics, rowCount=report.extracted
        ),
    }


def failed_report(error: BaseException | None) -> ValidationReport | None:
    """The report of a validation that failed the task (`ValidationFailed`, however wrapped)."""
    from citypulse.exceptions import ValidationFailed

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ValidationFailed):
            return error.report
        error = error.__cause__ or error.__context__
    return None


def _extract(contract: Contract, result: Any, error: BaseException | None) -> OperatorLineage:
    facets: dict[str, Any] = {}
    if result is not None:
        from citypulse.pipeline.manifest import RunManifest

        extracted = RunManifest.from_xcom(result, task="extract").extracted
        facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            rowCount=extracted.portal_rows,
            fileCount=len(extracted.parts),
        )
    return OperatorLineage(inputs=[portal_dataset(contract, **facets)])


def _validate(contract: Contract, result: Any, error: BaseException | None) -> OperatorLineage:
    report = None
    if result is not None:
        from citypulse.pipeline.manifest import RunManifest

        validated = RunManifest.from_xcom(result, task="validate").validated
        report = validated.report if validated is not None else None
    else:
        report = failed_report(error)
    facets = quality_facets(contract, report) if report is not None else {}
    return OperatorLineage(inputs=[portal_dataset(contract, **facets)])


def _load(contract: Contract, result: Any, error: BaseException | None) -> OperatorLineage:
    where = warehouse()
    table_facets: dict[str, Any] = {}
    rejects_facets: dict[str, Any] = {}
    if result is not None:
        table_facets = {
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(result["inserted"]) + int(result["updated"])
            ),
            LOAD_FACET: CityPulseLoadOutputDatasetFacet(
                inserted=int(result["inserted"]),
                updated=int(result["updated"]),
                unchanged=int(result["unchanged"]),
                rejected=int(result["rejected"]),
                auditId=int(result["audit_id"]),
            ),
        }
        rejects_facets = {
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(result["rejected"])
            )
        }
    return OperatorLineage(
        outputs=[
            where.output(contract.table, {"schema": table_schema(contract)}, table_facets),
            where.output(REJECTS_TABLE, output_facets=rejects_facets),
        ]
    )


def _build_views(contract: Contract, result: Any, error: BaseException | None) -> OperatorLineage:
    """Inputs: every city's table and history (the cross-city views union them all) and the
    audit (`pipeline_health`); outputs: the views the task (re)created."""
    from citypulse.contracts.contract import load_contracts
    from citypulse.warehouse.tables import history_table

    where = warehouse()
    contracts, _ = load_contracts()
    tables = sorted({t for c in contracts for t in (c.table, history_table(c))})
    return OperatorLineage(
        inputs=[where.input(t) for t in [*tables, AUDIT_TABLE]],
        outputs=[where.output(view) for view in (result or [])],
    )


CityStepLineage = Callable[["Contract", Any, "BaseException | None"], OperatorLineage]
# The steps whose datasets are known; the others (reconcile, housekeeping) report none.
CITY_STEPS: dict[str, CityStepLineage] = {
    "extract": _extract,
    "validate": _validate,
    "load": _load,
    "build_views": _build_views,
}


def city_step_lineage(
    step: str, dag_id: str, result: Any = None, error: BaseException | None = None
) -> OperatorLineage:
    """The lineage of a city step: `result` is what it returned (None: not finished), `error`
    what failed it."""
    lineage = CITY_STEPS.get(step)
    if lineage is None:
        return OperatorLineage()
    from citypulse.contracts.contract import contract_by_id

    return lineage(contract_by_id(dag_id), result, error)


def retrain_lineage(task: str, city: str | None, result: Any = None) -> OperatorLineage:
    """The lineage of a city's task in `hotspot_retrain`: `task` its task id without the
    group, `result` its hand-off (None: not finished or failed)."""
    if city is None or task not in ("check_freshness", "train", "predict"):
        return OperatorLineage()
    from citypulse.contracts.contract import contract_by_id
    from citypulse.model.handoff import CityRetrain
    from citypulse.warehouse.tables import history_table

    contract = contract_by_id(city)
    where = warehouse()
    handoff = CityRetrain.from_xcom(result, task=task) if result is not None else None
    if task == "check_freshness":
        return OperatorLineage(inputs=[where.input(contract.table), where.input(AUDIT_TABLE)])
    # `incident_versions` reads the city's table and the versions its updates replaced.
    city_tables = [where.input(contract.table), where.input(history_table(contract))]
    if task == "train":
        trained = handoff.trained if handoff is not None else None
        models = None if trained is None else len(trained.model_run_ids)
        registry = [
            where.output(
                REGISTRY_TABLES[0],
                output_facets=_row_count(models),
            ),
            where.output(REGISTRY_TABLES[1]),
        ]
        if trained is None or trained.published is not None:  # a backtest publishes nothing
            registry.append(where.output(REGISTRY_TABLES[2]))
        return OperatorLineage(inputs=city_tables, outputs=registry)
    forecast = handoff.forecast if handoff is not None else None
    predictions = None if forecast is None else forecast.predictions
    return OperatorLineage(
        inputs=[*city_tables, where.input(REGISTRY_TABLES[0])],
        outputs=[where.output(FORECAST_TABLE, output_facets=_row_count(predictions))],
    )


def _row_count(rows: int | None) -> dict[str, Any]:
    if rows is None:
        return {}
    return {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=rows
        )
    }
