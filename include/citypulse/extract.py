"""Extract: page through a Socrata dataset (`citypulse.socrata`), streaming the records into
parts under the run's prefix in the storage root.

The window's records come first, then (given a watermark) records of earlier days changed
since it. Imported only inside tasks (sodapy, requests).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from citypulse.contracts import Contract
from citypulse.manifest import Extracted
from citypulse.settings import PART_ROWS
from citypulse.socrata import RetryPolicy, SocrataClient
from citypulse.staging import PartWriter
from citypulse.storage import StorageRoot
from citypulse.windows import FLOATING_FORMAT, Window

log = logging.getLogger(__name__)


# A watermark is portal data that goes back into SoQL: only a timestamp may pass.
_WATERMARK = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?$")


def query_params(contract: Contract, window: Window) -> dict[str, Any]:
    """The SoQL of a window: the event-time range, in a stable order (event time, key)."""
    key = contract.key_column.wire_name
    params: dict[str, Any] = {
        "where": window.soql(contract.event_column.wire_name),
        "order": f"{contract.event_column.wire_name} ASC, {key} ASC",
    }
    if contract.system_fields:
        params["exclude_system_fields"] = False
    return params


def changes_params(contract: Contract, window: Window, watermark: str) -> dict[str, Any]:
    """SoQL for records of the `lookback_days` before the window that changed since the
    watermark, oldest change first."""
    if contract.change_column is None:
        raise ValueError(f"{contract.dag_id} has no incremental change column")
    if not _WATERMARK.fullmatch(watermark):
        raise ValueError(f"refusing watermark {watermark!r}: not a Socrata timestamp")
    change = contract.change_column.wire_name
    event = contract.event_column.wire_name
    assert contract.incremental is not None
    earliest = (window.start - timedelta(days=contract.incremental.lookback_days)).strftime(
        FLOATING_FORMAT
    )
    start, _ = window.soql_bounds()
    params: dict[str, Any] = {
        "where": (f"{change} >= '{watermark}' AND {event} >= '{earliest}' AND {event} < '{start}'"),
        "order": f"{change} ASC, {contract.key_column.wire_name} ASC",
    }
    if contract.system_fields:
        params["exclude_system_fields"] = False
    return params


def extract_window(
    contract: Contract,
    window: Window,
    root: StorageRoot,
    prefix: str,
    *,
    policy: RetryPolicy | None = None,
    page_size: int | None = None,
    part_rows: int = PART_ROWS,
    sleep: Callable[[float], None] = time.sleep,
    watermark: str | None = None,
) -> Extracted:
    """Write every record of the window into parts under `prefix`, page by page, then (given
    a watermark) every record outside the window changed since it. Window rows come first.
    On failure no part is left behind."""
    limit = page_size or contract.page_size
    queries = [("window", query_params(contract, window))]
    if watermark is not None and contract.incremental is not None:
        queries.append(("changes", changes_params(contract, window, watermark)))
    counts: dict[str, int] = {}
    with (
        SocrataClient(contract, policy=policy, sleep=sleep) as client,
        PartWriter(root, prefix, part_rows) as writer,
    ):
        for label, base in queries:
            counts[label] = 0
            for page in client.paged(base, label, limit):
                writer.write(page)
                counts[label] += len(page)
    rows = sum(counts.values())
    log.info(
        "%s: extracted %d records of %s .. %s and %d changed elsewhere since %s, "
        "in %d page(s) (%d retries), %d part(s)",
        contract.dag_id,
        counts["window"],
        window.start,
        window.end,
        counts.get("changes", 0),
        watermark,
        client.pages,
        client.retries,
        len(writer.parts),
    )
    return Extracted(
        parts=tuple(writer.parts),
        rows=rows,
        window_rows=counts["window"],
        change_rows=counts.get("changes", 0),
        pages=client.pages,
        retries=client.retries,
    )
