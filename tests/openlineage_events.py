"""Strict validation of OpenLineage events through the model the installed `openlineage-python`
client generates from the OpenLineage specification (`openlineage.client.generated`).

No copy of the specification is kept in this repository: its JSON schemas ship in no installable
package. The client's generated attrs classes carry what a check needs of them: each
definition's fields, which are required (a field without a default), their types (the
annotations), the formats the client checks (its validators: `uuid`, `date-time`, `uri`) and the
definition's URL (`_get_schema()`, what a facet's `_schemaURL` names).

`validate_events` builds the client's objects from every event dict, recursively, and raises
`InvalidEvent` (naming the path of the offending value) at the first violation:

- the event's `schemaURL` names one of the client's event definitions (`RunEvent`, ...), and
  `eventTime`, `producer` and `schemaURL` are present (the specification requires all three;
  the client fills `producer` and `schemaURL` in by itself, so its model has defaults for them);
- every required field is present and every value has the type of its field: a string, an
  integer (not a boolean), a number, a boolean, one of an enum's values, a list, an object;
  `null` nowhere (the specification's types do not include it; the client never sends one);
- an object that is not a facet (event, run, job, dataset, a facet's items) has no key its class
  lacks. This is stricter than the JSON schema, which leaves these objects open: a key there is
  one that a consumer built on the client's model drops, and no producer CityPulse uses sends one;
- a facet carries `_producer` and `_schemaURL` and may have keys of its own (the specification's
  `BaseFacet` is open, the generated classes have `with_additional_properties`):
  - under a standard key of its place (`STANDARD_FACETS`: `schema`, `inputStatistics`,
    `errorMessage`, ...) it is built through that key's class, and its `_schemaURL` names that
    class's definition (the same spec file and `$defs` entry; another version of the file is
    accepted, the client's own is `_get_schema()`);
  - under another key, a `_schemaURL` naming a generated class selects that class (Airflow's own
    facets name `RunFacet`), which must belong to the place (a run facet among the run's);
  - any other facet is a custom one: its base fields are built through the place's base class
    and, when its `_schemaURL` names a schema under `docs/openlineage/` (CityPulse's
    `citypulseLoad`), it is validated against that schema with `jsonschema`; the schema's
    references to the specification's facet bases resolve to `base_facet_schema()`, generated
    here from the same client classes;
- every object is constructed by its class, so the client's validators run (a `runId` that is
  no UUID, an `eventTime` that is no ISO 8601 date-time with a time fail).
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client import generated
from openlineage.client.generated import (
    base,
    base_subset_dataset,
    catalog_dataset,
    column_lineage_dataset,
    data_quality_metrics_dataset,
    dataset_type_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    documentation_job,
    environment_variables_run,
    error_message_run,
    execution_parameters_run,
    external_query_run,
    extraction_error_run,
    hierarchy_dataset,
    input_statistics_input_dataset,
    job_dependencies_run,
    job_type_job,
    lifecycle_state_change_dataset,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    source_code_job,
    source_code_location_job,
    sql_job,
    storage_dataset,
    symlinks_dataset,
    tags_dataset,
    tags_job,
    tags_run,
    test_run,
)
from openlineage.client.generated import data_quality_assertions_dataset as quality_assertions
from openlineage.client.generated import data_quality_metrics_input_dataset as quality_metrics_input

# CityPulse's own facet schemas (custom facets), by their `$id`.
CUSTOM_SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "openlineage"

FacetClass = type[base.BaseFacet]

# The key each standard facet is sent under, per place (the class of the facets there).
STANDARD_FACETS: dict[FacetClass, dict[str, FacetClass]] = {
    base.RunFacet: {
        "environmentVariables": environment_variables_run.EnvironmentVariablesRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
        "executionParameters": execution_parameters_run.ExecutionParametersRunFacet,
        "externalQuery": external_query_run.ExternalQueryRunFacet,
        "extractionError": extraction_error_run.ExtractionErrorRunFacet,
        "jobDependencies": job_dependencies_run.JobDependenciesRunFacet,
        "nominalTime": nominal_time_run.NominalTimeRunFacet,
        "parent": parent_run.ParentRunFacet,
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
        "tags": tags_run.TagsRunFacet,
        "test": test_run.TestRunFacet,
    },
    base.JobFacet: {
        "documentation": documentation_job.DocumentationJobFacet,
        "jobType": job_type_job.JobTypeJobFacet,
        "ownership": ownership_job.OwnershipJobFacet,
        "sourceCode": source_code_job.SourceCodeJobFacet,
        "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet,
        "sql": sql_job.SQLJobFacet,
        "tags": tags_job.TagsJobFacet,
    },
    base.DatasetFacet: {
        "catalog": catalog_dataset.CatalogDatasetFacet,
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
        "dataQualityMetrics": data_quality_metrics_dataset.DataQualityMetricsDatasetFacet,
        "dataSource": datasource_dataset.DatasourceDatasetFacet,
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet,
        "documentation": documentation_dataset.DocumentationDatasetFacet,
        "hierarchy": hierarchy_dataset.HierarchyDatasetFacet,
        "lifecycleStateChange": lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet,
        "ownership": ownership_dataset.OwnershipDatasetFacet,
        "schema": schema_dataset.SchemaDatasetFacet,
        "storage": storage_dataset.StorageDatasetFacet,
        "symlinks": symlinks_dataset.SymlinksDatasetFacet,
        "tags": tags_dataset.TagsDatasetFacet,
        "version": dataset_version_dataset.DatasetVersionDatasetFacet,
    },
    base.InputDatasetFacet: {
        "dataQualityAssertions": quality_assertions.DataQualityAssertionsDatasetFacet,
        "dataQualityMetrics": quality_metrics_input.DataQualityMetricsInputDatasetFacet,
        "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet,
        "subset": base_subset_dataset.InputSubsetInputDatasetFacet,
    },
    base.OutputDatasetFacet: {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
        "subset": base_subset_dataset.OutputSubsetOutputDatasetFacet,
    },
}
# What the specification requires of every event and facet although the client's model gives
# it a default (the client fills these in itself).
SPEC_REQUIRED: dict[type, tuple[str, ...]] = {
    base.BaseEvent: ("eventTime", "producer", "schemaURL"),
    base.BaseFacet: ("_producer", "_schemaURL"),
}
EVENT_CLASSES = (base.RunEvent, base.JobEvent, base.DatasetEvent)


class InvalidEvent(ValueError):
    """An event that is not valid OpenLineage; the message names the path of the value."""


@dataclass(frozen=True)
class Definition:
    """Where a `_schemaURL` or `schemaURL` points: a spec file, apart from its version
    directory, and the `$defs` entry in it."""

    site: str
    folder: str
    file: str
    fragment: str

    @classmethod
    def of(cls, url: str) -> Definition:
        parts = urlsplit(url)
        folder, _, file = parts.path.rpartition("/")
        unversioned = folder.rpartition("/")[0] if parts.scheme in ("http", "https") else folder
        return cls(parts.netloc, unversioned, file, parts.fragment)

    @property
    def name(self) -> str:
        return self.fragment.rpartition("/")[2]


@cache
def generated_classes() -> dict[Definition, type]:
    """Every class the client generated from the specification, by the definition it names."""
    found: dict[Definition, type] = {}
    for module in pkgutil.iter_modules(generated.__path__):
        loaded = importlib.import_module(f"{generated.__name__}.{module.name}")
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            schema = getattr(cls, "_get_schema", None)
            if attr.has(cls) and cls.__module__ == loaded.__name__ and schema is not None:
                found.setdefault(Definition.of(schema()), cls)
    return found


def base_facet_schema() -> dict[str, Any]:
    """The facet bases of the specification's `OpenLineage.json` (`BaseFacet`, `RunFacet`,
    `OutputDatasetFacet`, ...) as JSON schema, generated from the client's classes: their
    fields and types, `_producer` and `_schemaURL` required, other keys allowed."""
    json_types = {str: "string", bool: "boolean", int: "integer", float: "number"}
    definitions = {}
    bases: list[FacetClass] = [base.BaseFacet, *STANDARD_FACETS]
    for cls in bases:
        hints = typing.get_type_hints(cls)
        properties = {}
        for attribute in attr.fields(cls):
            hint = hints[attribute.name]
            (python_type,) = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
            properties[attribute.name] = {"type": json_types[python_type]}
        definitions[cls.__name__] = {
            "type": "object",
            "properties": properties,
            "required": list(SPEC_REQUIRED[base.BaseFacet]),
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": base.BaseFacet._get_schema().partition("#")[0],
        "$defs": definitions,
    }


@cache
def custom_schemas() -> Any:
    """CityPulse's facet schemas (docs/openlineage/) in a `referencing` registry that resolves
    the specification's `OpenLineage.json` to `base_facet_schema()` and nothing else."""
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource

    core = base_facet_schema()

    def retrieve(uri: str) -> Resource[Any]:
        if uri == core["$id"]:
            return Resource.from_contents(core)
        raise NoSuchResource(ref=uri)

    documents = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(CUSTOM_SCHEMAS.glob("*.json"))
    ]
    return Registry(retrieve=retrieve).with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents
    )


@dataclass
class Structurer:
    """Builds the client's objects from one event dict; `used` collects the definitions of the
    facets it checked (a class's name or a custom schema's `$defs` entry)."""

    used: set[str] = field(default_factory=set)

    def event(self, event: Any, path: str) -> Any:
        self._expect(isinstance(event, dict), path, "an event is an object", event)
        url = event.get("schemaURL")
        self._expect(isinstance(url, str), f"{path}.schemaURL", "a string (required)", url)
        wanted = Definition.of(url)
        for cls in EVENT_CLASSES:
            if Definition.of(cls._get_schema()) == wanted:
                return self.object(cls, event, path)
        raise InvalidEvent(f"{path}.schemaURL: {url!r} names no OpenLineage event definition")

    def object(self, cls: type, value: Any, path: str) -> Any:
        """`value` built into `cls`: every required field present, each of its type, no key
        `cls` lacks unless `cls` is open (a facet), the class's validators run."""
        self._expect(isinstance(value, dict), path, f"{cls.__name__} is an object", value)
        fields = {a.name: a for a in attr.fields(cls)}
        open_ = hasattr(cls, "with_additional_properties")
        unknown = sorted(set(value) - set(fields))
        if unknown and not open_:
            raise InvalidEvent(f"{path}: {cls.__name__} has no field {', '.join(unknown)}")
        spec_required = {
            name for kind, names in SPEC_REQUIRED.items() if issubclass(cls, kind) for name in names
        }
        hints = typing.get_type_hints(cls)
        arguments: dict[str, Any] = {}
        for name, attribute in fields.items():
            here = f"{path}.{name}"
            if name not in value:
                if attribute.default is attr.NOTHING or name in spec_required:
                    raise InvalidEvent(f"{here}: required by {cls.__name__}, missing")
                continue
            structured = self.value(hints[name], value[name], here)
            if attribute.init:
                arguments[attribute.alias] = structured
        try:
            with attr.validators.disabled():
                built = cls(**arguments)
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"{path}: {cls.__name__} refused it: {exc}") from exc
        for name, attribute in fields.items():  # the client's validators, each naming its field
            if attribute.validator is not None and name in value:
                try:
                    attribute.validator(built, attribute, getattr(built, name))
                except (TypeError, ValueError) as exc:
                    raise InvalidEvent(
                        f"{path}.{name}: {cls.__name__} refused {value[name]!r:.200}: {exc}"
                    ) from exc
        return built

    def value(self, hint: Any, value: Any, path: str) -> Any:
        """`value` checked against the type `hint` of the client's model and built."""
        if hint is Any:
            return value
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if origin in (types.UnionType, typing.Union):
            options = [a for a in arguments if a is not type(None)]
            self._expect(value is not None, path, "a value (null is no OpenLineage value)", value)
            errors = []
            for option in options:
                try:
                    return self.value(option, value, path)
                except InvalidEvent as exc:
                    errors.append(str(exc))
            raise InvalidEvent(" / ".join(errors))
        if origin is typing.Literal:
            self._expect(value in arguments, path, f"one of {list(arguments)}", value)
            return value
        if origin is list:
            self._expect(isinstance(value, list), path, "a list", value)
            return [self.value(arguments[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
        if origin is dict:
            self._expect(isinstance(value, dict), path, "an object", value)
            item_type = arguments[1]
            if isinstance(item_type, type) and issubclass(item_type, base.BaseFacet):
                return {
                    key: self.facet(item_type, key, facet, path) for key, facet in value.items()
                }
            return {
                key: self.value(item_type, item, f"{path}.{key}") for key, item in value.items()
            }
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            allowed = [member.value for member in hint]
            self._expect(value in allowed, path, f"one of {allowed}", value)
            return hint(value)
        if attr.has(hint):
            return self.object(hint, value, path)
        checks = {
            str: lambda v: isinstance(v, str),
            bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        }
        self._expect(hint in checks, path, f"a type this validator knows ({hint!r})", value)
        self._expect(checks[hint](value), path, hint.__name__, value)
        return value

    def facet(self, place: FacetClass, key: str, value: Any, path: str) -> Any:
        """The facet `key` among the facets of class `place` (`RunFacet`, `InputDatasetFacet`,
        ...), built through its class or, a custom facet, checked against its schema."""
        here = f"{path}.{key}"
        self._expect(isinstance(value, dict), here, "a facet is an object", value)
        for name in SPEC_REQUIRED[base.BaseFacet]:
            given = value.get(name)
            self._expect(isinstance(given, str), f"{here}.{name}", "a string (required)", given)
        url = value["_schemaURL"]
        named = Definition.of(url)
        standard = STANDARD_FACETS.get(place, {}).get(key)
        cls = standard or generated_classes().get(named)
        if standard is not None and Definition.of(standard._get_schema()) != named:
            raise InvalidEvent(
                f"{here}._schemaURL: {url!r} is not the definition of {standard.__name__} "
                f"({standard._get_schema()!r})"
            )
        if cls is None:
            built = self.object(place, value, here)  # a custom facet's base fields
            self.custom(named, url, value, here)
            return built
        if not issubclass(cls, place):
            raise InvalidEvent(f"{here}: {cls.__name__} is no {place.__name__}")
        self.used.add(cls.__name__)
        return self.object(cls, value, here)

    def custom(self, named: Definition, url: str, value: dict[str, Any], path: str) -> None:
        """A custom facet whose `_schemaURL` names one of CityPulse's schemas, validated
        against it; other producers' custom facets are left to them."""
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import ValidationError

        document, _, _ = url.partition("#")
        registry = custom_schemas()
        if document not in {str(uri) for uri in registry}:
            return
        try:
            Draft202012Validator({"$ref": url}, registry=registry).validate(value)
        except ValidationError as exc:
            where = "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in exc.absolute_path)
            raise InvalidEvent(f"{path}{where}: {exc.message} ({named.name})") from exc
        self.used.add(named.name)

    @staticmethod
    def _expect(ok: bool, path: str, wanted: str, value: Any) -> None:
        if not ok:
            raise InvalidEvent(f"{path}: expected {wanted}, got {value!r:.200}")


def validate_events(events: list[dict[str, Any]]) -> set[str]:
    """Every event built into the client's objects (module docstring); the definitions of the
    facets checked. Raises `InvalidEvent` at the first violation."""
    structurer = Structurer()
    for i, event in enumerate(events):
        structurer.event(event, f"event[{i}]")
    return structurer.used
