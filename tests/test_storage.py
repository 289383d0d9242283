"""The storage root (`citypulse.storage`): the same operations on a local folder and on an
S3-compatible server (moto) reached through an Airflow `aws` connection, and a root that
cannot be used fails naming its URL and its connection.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from citypulse.exceptions import StorageError
from citypulse.storage import StorageRoot, run_prefix


@pytest.fixture(params=["file", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> StorageRoot:
    if request.param == "file":
        return StorageRoot(tmp_path.as_uri())
    s3 = request.getfixturevalue("s3_server")
    return StorageRoot(s3.url(s3.bucket()))


def test_objects_are_written_read_listed_and_removed(root: StorageRoot) -> None:
    root.check()
    with root.open_write("runs/d/r1/extract/part-00000.ndjson") as handle:
        handle.write(b'{"a":"1"}\n')
    with root.open_write("runs/d/r2/accepted.csv") as handle:
        handle.write(b"x\n")
    assert root.exists("runs/d/r1/extract/part-00000.ndjson")
    assert not root.exists("runs/d/r1/accepted.csv")
    with root.open_read("runs/d/r1/extract/part-00000.ndjson") as handle:
        assert handle.read() == b'{"a":"1"}\n'
    assert root.children("runs/d") == ["runs/d/r1", "runs/d/r2"]
    assert root.children("runs/nothing") == []
    written = root.last_write("runs/d/r1")
    assert written is not None and abs(datetime.now(UTC) - written) < timedelta(minutes=5)
    assert root.last_write("runs/nothing") is None
    root.remove("runs/d/r1")
    assert root.children("runs/d") == ["runs/d/r2"]
    root.remove("runs/d/r1")  # removing what is gone is no error
    assert str(root.object("runs/d/r2/accepted.csv")).endswith("/runs/d/r2/accepted.csv")


def test_the_local_root_is_plain_files(tmp_path: Path) -> None:
    root = StorageRoot(tmp_path.as_uri())
    with root.object("a/b.txt").open("wb") as handle:
        handle.write(b"x")
    assert root.local_path("a/b.txt") == tmp_path / "a" / "b.txt"
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"x"


def test_run_ids_become_safe_key_segments() -> None:
    assert run_prefix("nyc_311", "scheduled__2025-10-13T04:00:00+00:00") == (
        "runs/nyc_311/scheduled__2025-10-13T04_00_00_00_00"
    )


def test_a_root_whose_connection_is_missing_fails_naming_it() -> None:
    root = StorageRoot("s3://no_such_conn@bucket/prefix")
    with pytest.raises(StorageError) as caught:
        root.check()
    message = str(caught.value)
    assert "s3://no_such_conn@bucket/prefix" in message and "'no_such_conn'" in message
    assert "no Airflow connection" in message
    assert not caught.value.transient  # a retry cannot create the connection


def test_an_unreachable_root_fails_naming_url_and_connection(s3_server: Any) -> None:
    root = StorageRoot(s3_server.url("no-such-bucket-here"))
    with pytest.raises(StorageError) as caught:
        root.check()
    message = str(caught.value)
    assert s3_server.url("no-such-bucket-here") in message
    assert f"connection '{s3_server.CONN_ID}'" in message
    assert "cannot be written and read back" in message


def test_a_root_that_is_not_a_storage_url_fails_naming_it() -> None:
    with pytest.raises(StorageError, match="nosuchproto://x/y"):
        StorageRoot("nosuchproto://x/y").check()


def test_a_local_root_that_cannot_be_written_fails_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "runs").write_text("a file where a folder must go")
    root = StorageRoot((locked / "runs").as_uri())
    with pytest.raises(StorageError, match=str(locked / "runs")):
        root.check()


def test_last_write_is_the_newest_object(tmp_path: Path) -> None:
    root = StorageRoot(tmp_path.as_uri())
    for name, age in (("old", 10), ("new", 2)):
        with root.open_write(f"runs/d/r/{name}") as handle:
            handle.write(b"x")
        stamp = time.time() - age * 86400
        os.utime(tmp_path / "runs" / "d" / "r" / name, (stamp, stamp))
    written = root.last_write("runs/d/r")
    assert written is not None
    assert timedelta(days=1.9) < datetime.now(UTC) - written < timedelta(days=2.1)


# --- a configuration error is terminal; an outage is not ------------------------------------


def test_a_root_that_cannot_be_used_as_configured_is_not_retried(
    tmp_path: Path, s3_server: Any
) -> None:
    blocked = tmp_path / "runs"
    blocked.write_text("a file where the root's folder must go")
    for root in (StorageRoot(blocked.as_uri()), StorageRoot(s3_server.url("no-such-bucket-here"))):
        with pytest.raises(StorageError) as caught:
            root.check()
        assert not caught.value.transient, str(caught.value)  # a retry cannot fix the setting


def test_a_storage_server_that_is_down_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from helpers import free_port

    down = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": f"http://127.0.0.1:{free_port()}", "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_S3_DOWN", json.dumps(down))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StorageError) as caught:
        StorageRoot("s3://s3_down@bucket/prefix").check()
    assert caught.value.transient, str(caught.value)  # the server may be back on the next try


def test_every_use_of_a_root_whose_connection_is_missing_fails_naming_it() -> None:
    # Not only check(): listing (housekeeping) must not fall back to boto's own credentials.
    root = StorageRoot("s3://no_such_conn@bucket/prefix")
    for use in (lambda: root.children("runs/nyc_311"), lambda: root.exists("runs/x")):
        with pytest.raises(StorageError, match="no Airflow connection 'no_such_conn'") as caught:
            use()
        assert not caught.value.transient
