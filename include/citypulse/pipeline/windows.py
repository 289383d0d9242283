"""Extraction windows: the local wall-clock span a run covers, and how it reads in SoQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

FLOATING_FORMAT = "%Y-%m-%dT%H:%M:%S.000"


@dataclass(frozen=True)
class Window:
    """A half-open span [start, end) of local wall time in one city's timezone."""

    start: datetime  # naive, local wall time
    end: datetime  # naive, local wall time
    timezone: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window bounds are naive local wall times")
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start} .. {self.end}")

    @property
    def hours(self) -> float:
        """Real elapsed hours, which differ from wall hours on DST-change days."""
        zone = ZoneInfo(self.timezone)
        # Subtracting aware datetimes of one zone compares wall times: go through UTC.
        start_utc = self.start.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
        end_utc = self.end.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
        return (end_utc - start_utc).total_seconds() / 3600

    def soql_bounds(self) -> tuple[str, str]:
        """The bounds as Socrata floating timestamps."""
        return self.start.strftime(FLOATING_FORMAT), self.end.strftime(FLOATING_FORMAT)

    def soql(self, column: str) -> str:
        """The SoQL predicate selecting this window on a floating-timestamp column."""
        start, end = self.soql_bounds()
        return f"{column} >= '{start}' AND {column} < '{end}'"

    def as_dict(self) -> dict[str, str]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        return cls(
            datetime.fromisoformat(data["start"]),
            datetime.fromisoformat(data["end"]),
            data["timezone"],
        )


def window_for_interval(start: datetime, end: datetime, timezone: str) -> Window:
    """The local wall-time window of an Airflow data interval (aware datetimes, any zone)."""
    zone = ZoneInfo(timezone)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    return Window(local_start, local_end, timezone)


def window_for_dates(start: str, end: str, timezone: str) -> Window:
    """A window of whole local days from ISO dates, `end` inclusive (as backfills count)."""
    first = date.fromisoformat(start)
    last = date.fromisoformat(end)
    if last < first:
        raise ValueError(f"end_date {end} is before start_date {start}")
    return Window(
        datetime.combine(first, datetime.min.time()),
        datetime.combine(last + timedelta(days=1), datetime.min.time()),
        timezone,
    )
