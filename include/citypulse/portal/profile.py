"""Profile a dataset for `citypulse contract init`: the few SoQL questions a draft contract
needs, asked through the one Socrata client (retries, deadline, origin check, app token).

The portal's view metadata already holds most answers (each column's `cachedContents`:
non-null count, cardinality, smallest, largest, top values); the queries ask the rest:

1. `count(*)` and `max(:updated_at)` (plus `count`, `min`, `max` of columns without
   cachedContents), one query;
2. a sample of `SAMPLE_ROWS` records ordered by `:id` (integer or fraction, flags, clock times);
3. per coordinate column, its trimmed low and high quantiles (`$order` with `$offset`), zeros
   left out: four queries (none for coordinates sent as text: read from the sample);
4. how many rows over a week old were re-stamped within a day of the newest stamp, one query;
5. only for columns without cachedContents: their value counts (`$group`), one query each, at
   most `MAX_GROUPED`.

With cachedContents (most portals): 8 requests in all, the metadata included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from citypulse.contracts import scaffold
from citypulse.contracts.scaffold import FieldFigures, Profile, Spread
from citypulse.portal.metadata import ViewColumn, ViewMetadata
from citypulse.portal.transport import SoqlQuery

if TYPE_CHECKING:
    from citypulse.portal.client import SocrataClient

SAMPLE_ROWS = 500
MAX_GROUPED = 30
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROFILED = ("number", "text", "calendar_date", "checkbox", "date", "url")


def portal_client(portal: str, dataset_id: str) -> SocrataClient:
    """The pipeline's own client for one dataset, before any contract exists.

    `SocrataClient` reads only where the data lives from its contract (portal, dataset id,
    a DAG id for messages); a contract that is never validated (`model_construct`) carries
    just those, so the scaffold goes through exactly the transport, token and
    `SOCRATA_BASE_URL` the pipeline uses, without a second way to build a client.
    """
    from citypulse.contracts.contract import Contract
    from citypulse.portal.client import SocrataClient

    where: dict[str, Any] = {"dag_id": "contract_init", "portal": portal, "dataset_id": dataset_id}
    return SocrataClient(Contract.model_construct(**where))


def profile_dataset(client: SocrataClient, metadata: ViewMetadata, today: date) -> Profile:
    """Ask the portal what a draft contract needs (see the module's list of queries)."""
    columns = [c for c in metadata.data_columns if c.data_type in _PROFILED]
    columns = [c for c in columns if _FIELD.fullmatch(c.field_name)]
    summary = _summary(client, columns)
    queries = 2  # the metadata and the summary
    rows = _count(summary.get("rows"))
    fields = {c.field_name: _figures(c, summary, rows) for c in columns}
    sample = client.get(
        SoqlQuery(order=":id", limit=SAMPLE_ROWS, system_fields=True), client.describe("sample")
    )
    queries += 1
    for column in [c for c in columns if fields[c.field_name].distinct is None][:MAX_GROUPED]:
        fields[column.field_name] = _grouped(client, column.field_name, fields[column.field_name])
        queries += 1
    profile = Profile(rows=rows, fields=fields, sample=tuple(sample), queries=queries)

    quantiles: dict[str, Spread] = {}
    for name in scaffold.coordinate_fields(metadata) or ():
        found = metadata.column(name)
        if found is not None and found.data_type == "number":
            low, high = _quantiles(client, name, fields[name].non_null)
            ends = scaffold.numeric_values([fields[name].minimum or "", fields[name].maximum or ""])
            smallest, largest = (ends[0], ends[-1]) if len(ends) == 2 else (low, high)
            quantiles[name] = Spread(low, high, smallest, largest)
            queries += 2
        else:  # sent as text: sorted as text by the portal, so read from the sample
            numbers = sorted(n for n in scaffold.numeric_values(profile.sampled(name)) if n != 0)
            if numbers:
                cut = int(len(numbers) * scaffold.TRIM_SHARE)
                quantiles[name] = Spread(numbers[cut], numbers[-1 - cut], numbers[0], numbers[-1])
    profile = replace(profile, quantiles=quantiles, queries=queries)
    restamped = _restamped_share(client, metadata, profile, summary, today)
    return replace(profile, restamped_share=restamped, queries=queries + (restamped is not None))


def _summary(client: SocrataClient, columns: list[ViewColumn]) -> Mapping[str, Any]:
    """count(*), the newest `:updated_at`, and count/min/max of columns without stats."""
    select = ["count(*) AS rows", "max(:updated_at) AS newest_stamp"]
    for i, column in enumerate(columns):
        if column.stats is None or column.stats.non_null is None:
            select.append(f"count({column.field_name}) AS c{i}_n")
        unranged = column.stats is None or column.stats.smallest is None
        if unranged and column.data_type in ("number", "calendar_date", "date"):
            select.append(f"min({column.field_name}) AS c{i}_lo")
            select.append(f"max({column.field_name}) AS c{i}_hi")
    rows = client.get(SoqlQuery(select=", ".join(select)), client.describe("profile"))
    answer = dict(rows[0]) if rows else {}
    for i, column in enumerate(columns):
        answer[column.field_name] = {
            k[len(f"c{i}_") :]: v for k, v in answer.items() if k.startswith(f"c{i}_")
        }
    return answer


def _count(value: Any) -> int:
    return int(str(value)) if value is not None and str(value).isdigit() else 0


def _figures(column: ViewColumn, summary: Mapping[str, Any], rows: int) -> FieldFigures:
    """A column's figures: its cachedContents, else what the summary query answered."""
    asked = summary.get(column.field_name) or {}
    stats = column.stats
    non_null = stats.non_null if stats and stats.non_null is not None else _count(asked.get("n"))
    values = None
    if stats and stats.cardinality is not None and stats.cardinality <= len(stats.top):
        values = tuple((_text(item), n) for item, n in stats.top)
    return FieldFigures(
        non_null=non_null,
        minimum=stats.smallest if stats and stats.smallest is not None else asked.get("lo"),
        maximum=stats.largest if stats and stats.largest is not None else asked.get("hi"),
        distinct=stats.cardinality if stats else None,
        values=values,
    )


def _text(item: Any) -> str:
    return str(item).lower() if isinstance(item, bool) else str(item)


def _grouped(client: SocrataClient, name: str, figures: FieldFigures) -> FieldFigures:
    """Value counts of a column without cachedContents: the most frequent few, which tell
    whether its values are few (a closed set) or each unique (a key)."""
    limit = scaffold.MAX_SET_VALUES + 1
    groups = client.get(
        SoqlQuery(
            select=f"{name} AS value, count(*) AS n",
            where=f"{name} IS NOT NULL",
            group="value",
            order="n DESC",
            limit=limit,
        ),
        client.describe(f"values of {name}"),
    )
    counts = tuple((_text(g.get("value")), _count(g.get("n"))) for g in groups)
    if len(counts) < limit:
        return replace(figures, distinct=len(counts), values=counts)
    if counts and counts[0][1] == 1:  # the most frequent value occurs once: all distinct
        return replace(figures, distinct=figures.non_null)
    return figures


def _quantiles(client: SocrataClient, name: str, non_null: int) -> tuple[float, float]:
    """The trimmed low and high values of a number column, zeros left out (a missing point
    is often sent as 0): each end by `$order` and `$offset`."""
    skip = int(non_null * scaffold.TRIM_SHARE)
    ends = []
    for order in ("ASC", "DESC"):
        rows = client.get(
            SoqlQuery(
                select=f"{name} AS value",
                where=f"{name} IS NOT NULL AND {name} != 0",
                order=f"{name} {order}",
                offset=skip,
                limit=1,
            ),
            client.describe(f"{name} {order.lower()} quantile"),
        )
        if not rows:  # fewer rows than the trim: take the end itself
            rows = client.get(
                SoqlQuery(select=f"{name} AS value", where=f"{name} IS NOT NULL AND {name} != 0",
                          order=f"{name} {order}", limit=1),
                client.describe(f"{name} {order.lower()} end"),
            )  # fmt: skip
        ends.append(float(rows[0]["value"]) if rows else 0.0)
    return ends[0], ends[1]


def _restamped_share(
    client: SocrataClient,
    metadata: ViewMetadata,
    profile: Profile,
    summary: Mapping[str, Any],
    today: date,
) -> float | None:
    """The share of all rows whose event is over a week older than the newest change stamp
    and whose stamp is within a day of it: near 1 on a portal that republishes every row."""
    event = scaffold.guess_event(metadata, profile, today).name
    change = scaffold.guess_change(metadata, profile, today).name
    stamp = change or ":updated_at"
    newest = profile.figures(change).maximum if change else summary.get("newest_stamp")
    when = _instant(newest)
    if event is None or when is None or not profile.rows:
        return None
    recent = (when - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    old = (when - timedelta(days=scaffold.LOOKBACK_DAYS)).strftime("%Y-%m-%dT%H:%M:%S")
    restamped = client.get(
        SoqlQuery(select="count(*) AS n", where=f"{stamp} >= '{recent}' AND {event} < '{old}'"),
        client.describe("re-stamped rows"),
    )
    return _count(restamped[0].get("n") if restamped else 0) / profile.rows


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "")[:19]) if value else None
    except ValueError:
        return None
