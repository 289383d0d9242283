"""The storage root: where tasks hand each other files, through Airflow's Object Storage.

Every run file (extract parts, accepted rows, rejects) and every model artifact lives under
one root, `CITYPULSE_STORAGE_URL`: any URL `airflow.sdk.ObjectStoragePath` accepts, e.g.
`file:///srv/citypulse` or `s3://<aws_conn_id>@<bucket>/<prefix>`. Only keys relative to the
root cross a task boundary, so a task may run on any worker that reaches the root.
Imported only inside tasks.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from citypulse import settings
from citypulse.exceptions import StorageError

log = logging.getLogger(__name__)

# What a storage root answers when it is set up wrong (a missing bucket or folder, a file where
# a folder must be, no permission): no retry fixes these; anything else (a refused connection,
# a timeout, a 5xx) may pass.
_CONFIGURATION_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)

RUNS_PREFIX = "runs"
MODELS_PREFIX = "models"
# Where fsspec filesystems keep an object's modification time (local, s3, gcs, abfs).
_MODIFIED_FIELDS = ("mtime", "LastModified", "last_modified", "updated", "mtime_ns")


def run_prefix(dag_id: str, run_id: str) -> str:
    """The key prefix of one run's files; run ids become safe key segments."""
    return f"{RUNS_PREFIX}/{dag_id}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}"


@dataclass(frozen=True)
class StorageRoot:
    """One object storage root and the keys below it."""

    url: str

    @classmethod
    def configured(cls) -> StorageRoot:
        """The root `CITYPULSE_STORAGE_URL` names (default: the data folder on this disk)."""
        return cls(settings.STORAGE_URL)

    @cached_property
    def base(self) -> Any:
        from airflow.sdk import ObjectStoragePath

        # Before any use: without its connection, a root would fall back to the cloud SDK's
        # own credentials (boto's default chain) and reach whatever they reach.
        self._require_connection()
        try:
            return ObjectStoragePath(self.url)
        except Exception as exc:
            raise StorageError(f"{self.described}: not a usable storage URL ({exc})") from None

    @cached_property
    def conn_id(self) -> str | None:
        # Parsed as ObjectStoragePath does: s3://<conn_id>@<bucket>/<prefix>.
        from urllib.parse import urlsplit

        userinfo, at, _ = urlsplit(self.url).netloc.rpartition("@")
        return (userinfo or None) if at else None

    @property
    def described(self) -> str:
        """How messages name the root: its URL and connection."""
        connection = f"connection {self.conn_id!r}" if self.conn_id else "no connection"
        return f"storage root {self.url} ({connection})"

    @property
    def is_local(self) -> bool:
        return bool(self.base.protocol in ("file", "local"))

    def object(self, key: str) -> StoredObject:
        """The object at a key."""
        return StoredObject(self, key)

    def path(self, key: str) -> Any:
        """The ObjectStoragePath of a key."""
        return self.base / key

    def local_path(self, key: str) -> Path | None:
        """The key as a path on this machine's disk, when the root is a local folder."""
        return Path(self.path(key).path) if self.is_local else None

    def exists(self, key: str) -> bool:
        return bool(self.path(key).exists())

    @contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """The object, open for reading bytes (a plain file when the root is local)."""
        local = self.local_path(key)
        with local.open("rb") if local is not None else self.path(key).open("rb") as handle:
            yield handle

    @contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """The object, open for writing bytes; it appears whole when the block ends."""
        local = self.local_path(key)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            with local.open("wb") as handle:
                yield handle
        else:
            with self.path(key).open("wb") as handle:
                yield handle

    def remove(self, prefix: str) -> None:
        """Every object under `prefix` (nothing when there is none)."""
        path = self.path(prefix)
        if path.exists():
            path.fs.rm(path.path, recursive=True)

    def children(self, prefix: str) -> list[str]:
        """The keys one level below `prefix` (objects and folders)."""
        path = self.path(prefix)
        if not path.exists():
            return []
        return sorted(f"{prefix}/{child.name}" for child in path.iterdir())

    def last_write(self, prefix: str) -> datetime | None:
        """When the newest object under `prefix` was written (None: no object)."""
        path = self.path(prefix)
        found = path.fs.find(path.path, detail=True) if path.exists() else {}
        times = [t for t in map(_modified, found.values()) if t is not None]
        return max(times) if times else None

    def _require_connection(self) -> None:
        """StorageError (terminal) when the root names a connection Airflow does not have."""
        if self.conn_id:
            from airflow.sdk import BaseHook
            from airflow.sdk.exceptions import AirflowNotFoundException

            try:
                BaseHook.get_connection(self.conn_id)
            except AirflowNotFoundException:
                raise StorageError(
                    f"{self.described}: there is no Airflow connection {self.conn_id!r}; "
                    "create it or fix CITYPULSE_STORAGE_URL"
                ) from None

    def check(self) -> None:
        """Raise StorageError naming the root and its connection unless an object can be
        written, read back and removed there: terminal when the root is set up wrong (no
        connection, no bucket or folder, no permission), transient otherwise."""
        self._require_connection()
        key = f".probe/{uuid.uuid4().hex}"
        try:
            with self.open_write(key) as handle:
                handle.write(b"citypulse")
            with self.open_read(key) as handle:
                if handle.read() != b"citypulse":
                    raise OSError("an object written there read back different")
            self.path(key).unlink()
        except StorageError:
            raise
        except Exception as exc:
            configuration = isinstance(exc, _CONFIGURATION_ERRORS)
            raise StorageError(
                f"{self.described} cannot be written and read back: {type(exc).__name__}: "
                f"{exc}. "
                + (
                    "Fix CITYPULSE_STORAGE_URL or the storage it names (not retried)"
                    if configuration
                    else "Check CITYPULSE_STORAGE_URL and the connection"
                ),
                transient=not configuration,
            ) from None


def _modified(info: dict[str, Any]) -> datetime | None:
    for field in _MODIFIED_FIELDS:
        value = info.get(field)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            seconds = value / 1e9 if field == "mtime_ns" else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class StoredObject:
    """One object under a storage root: opened like a `Path` (`open("rb")`, `open("wb")`)."""

    root: StorageRoot
    key: str

    def open(self, mode: str = "rb") -> Any:
        if mode not in ("rb", "wb"):
            raise ValueError(f"objects open as bytes, 'rb' or 'wb', not {mode!r}")
        return self.root.open_read(self.key) if mode == "rb" else self.root.open_write(self.key)

    @property
    def local_path(self) -> Path | None:
        return self.root.local_path(self.key)

    def exists(self) -> bool:
        return self.root.exists(self.key)

    def __str__(self) -> str:
        return f"{self.root.url.rstrip('/')}/{self.key}"
