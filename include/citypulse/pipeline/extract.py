"""Extract: read a window of a Socrata dataset (`citypulse.portal.client`) into parts under the
run's prefix in the storage root, and prove it complete.

Each query is paged by Socrata's row id and then counted by the portal (`count(*)` for the
same `$where`): a window whose records read differ from the portal's count (a short page, a
record published or removed while paging) is read again, and fails with both counts if it
never agrees. The window's records come first; a run that absorbs changes then reads every
record of an earlier day changed since the watermark, whatever its age, up to the newest
change the portal held when the run began (the next watermark). That bound never passes the
run's start nor the portal's own last data change (`rowsUpdatedAt` of its view metadata): a
record stamped in the future (Chicago once sent `updated_on` 2202-01-01) would otherwise carry
the watermark past every later edit; it is named in a warning instead, and read by the runs
after its stamp. Imported only inside tasks.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from citypulse.contracts.column_types import column_type
from citypulse.contracts.contract import Contract
from citypulse.exceptions import PortalError
from citypulse.pipeline.manifest import Extracted, Part
from citypulse.pipeline.run_files import PartWriter
from citypulse.pipeline.windows import FLOATING_FORMAT, Window
from citypulse.portal.client import RetryPolicy, SocrataClient
from citypulse.portal.metadata import ViewMetadata
from citypulse.settings import PART_ROWS
from citypulse.storage import StorageRoot

log = logging.getLogger(__name__)

# A watermark is portal data that goes back into SoQL: only a timestamp may pass.
_WATERMARK = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?$")
# How often a query is read again when the records read and the portal's count differ.
READ_ATTEMPTS = 3


def window_where(contract: Contract, window: Window) -> str:
    """The SoQL selecting a window: its event-time range."""
    return window.soql(contract.event_column.wire_name)


def changes_where(contract: Contract, window: Window, watermark: str, upper: str) -> str:
    """The SoQL selecting records of days before the window changed from the watermark up to
    `upper` (both inclusive); within `lookback_days` before the window when the contract
    bounds it (portals that re-stamp every row)."""
    if contract.change_column is None or contract.incremental is None:
        raise ValueError(f"{contract.dag_id} has no incremental change column")
    for value in (watermark, upper):
        if not _WATERMARK.fullmatch(value):
            raise ValueError(f"refusing watermark {value!r}: not a Socrata timestamp")
    change = contract.change_column.wire_name
    event = contract.event_column.wire_name
    start, _ = window.soql_bounds()
    where = f"{change} >= '{watermark}' AND {change} <= '{upper}' AND {event} < '{start}'"
    lookback = contract.incremental.lookback_days
    if lookback is not None:
        earliest = (window.start - timedelta(days=lookback)).strftime(FLOATING_FORMAT)
        where += f" AND {event} >= '{earliest}'"
    return where


def capture_bound(
    contract: Contract, newest: str, started: datetime, portal_updated: datetime | None = None
) -> str:
    """The next watermark: the portal's newest change, unless that is after `started` or
    after the portal's own last data change (`rowsUpdatedAt`, whole seconds): then the
    earlier of those, as the change column writes it (the dataset's wall time for a floating
    `timestamp`, UTC for a `timestamptz`, with the `Z` the portal used)."""
    assert contract.change_column is not None
    latest = started
    if portal_updated is not None:  # a second later: the portal's stamp drops the fraction
        latest = min(latest, portal_updated + timedelta(seconds=1))
    local = column_type(contract.change_column.type).local
    moment = latest.astimezone(ZoneInfo(contract.timezone) if local else UTC)
    zone = "Z" if newest.endswith(("Z", "z")) else ""
    bound = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + zone
    return bound if _wall(bound) < _wall(newest) else newest


def _wall(stamp: str) -> datetime:
    """A Socrata timestamp (checked by `_WATERMARK`) as a naive moment, to microseconds."""
    return datetime.fromisoformat(stamp.rstrip("Zz")[:26])


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
    incremental: bool = False,
    watermark: str | None = None,
    started: datetime | None = None,
    schema_check: Callable[[ViewMetadata], object] | None = None,
) -> Extracted:
    """Write every record of the window into parts under `prefix/window`, then, for an
    `incremental` run with a watermark, every record of earlier days changed since it under
    `prefix/changes`, up to the newest change but never past `started` (default: now). Each
    query's records equal the portal's count, or PortalError says both; on failure no part is
    left behind. The portal's view metadata is read once, first: `schema_check` gets it before
    any row is read (and may raise), the changes' upper bound uses its `rowsUpdatedAt`."""
    limit = page_size or contract.page_size
    parts: list[Part] = []
    counts: dict[str, int] = {}
    with SocrataClient(contract, policy=policy, sleep=sleep) as client:
        view = client.metadata()
        if schema_check is not None:
            schema_check(view)
        queries = [("window", window_where(contract, window))]
        upper = None
        if incremental and contract.change_column is not None:
            # The next watermark: changes after it are the next run's, so the changes query
            # below holds still while it is read and counted.
            change = contract.change_column.wire_name
            newest = client.newest(change, "changes")
            upper = None
            if newest is not None:
                now = started or datetime.now(UTC)
                upper = capture_bound(contract, newest, now, view.rows_updated_at)
                if upper != newest and view.rows_updated_at is not None:
                    # The metadata was read before newest(): a change landing in between is
                    # no stamp from the future. Ask the portal once more when it is what binds.
                    upper = capture_bound(contract, newest, now, client.metadata().rows_updated_at)
                if upper != newest:
                    _warn_future_changes(client, change, newest, upper)
            if watermark is not None and upper is not None:
                queries.append(("changes", changes_where(contract, window, watermark, upper)))
        try:
            for label, where in queries:
                read, counts[label] = _read_counted(
                    client, where, label, root, f"{prefix}/{label}", limit, part_rows
                )
                parts.extend(read)
        except BaseException:
            root.remove(prefix)
            raise
    rows = sum(counts.values())
    log.info(
        "%s: extracted %d records of %s .. %s and %d of earlier days changed since %s (up to "
        "%s), each query equal to the portal's count, in %d page(s) (%d retries), %d part(s)",
        contract.dag_id,
        counts["window"],
        window.start,
        window.end,
        counts.get("changes", 0),
        watermark,
        upper,
        client.pages,
        client.retries,
        len(parts),
    )
    return Extracted(
        parts=tuple(parts),
        rows=rows,
        window_rows=counts["window"],
        change_rows=counts.get("changes", 0),
        pages=client.pages,
        retries=client.retries,
        portal_rows=rows,
        watermark=upper if incremental else None,
    )


def _warn_future_changes(client: SocrataClient, change: str, newest: str, bound: str) -> None:
    future = client.count(f"{change} > '{bound}'", "changes from the future")
    log.warning(
        "%s: %d record(s) carry a change stamp from the future (%s > %s, the newest %s): the "
        "watermark stays at %s, and they are read by the first run after their stamp (the "
        "partition audit compares them meanwhile). Ask the portal's publisher to fix them",
        client.describe("changes"),
        future,
        change,
        bound,
        newest,
        bound,
    )


def _read_counted(
    client: SocrataClient,
    where: str,
    label: str,
    root: StorageRoot,
    prefix: str,
    limit: int,
    part_rows: int,
) -> tuple[tuple[Part, ...], int]:
    """Read one query into parts until the records read equal the portal's count."""
    read = counted = 0
    for attempt in range(1, READ_ATTEMPTS + 1):
        with PartWriter(root, prefix, part_rows) as writer:
            read = 0
            for page in client.keyset(where, label, limit):
                writer.write(page)
                read += len(page)
        counted = client.count(where, label)
        if read == counted:
            return tuple(writer.parts), read
        log.warning(
            "%s: read %d records but the portal counts %d (attempt %d of %d): reading again",
            client.describe(label),
            read,
            counted,
            attempt,
            READ_ATTEMPTS,
        )
    raise PortalError(
        f"{client.describe(label)}: the portal counts {counted:,} records for `{where}` but "
        f"{read:,} were read (attempt {READ_ATTEMPTS} of {READ_ATTEMPTS}; short pages, or "
        "records published or removed while paging); nothing of this window was loaded",
        transient=True,
    )
