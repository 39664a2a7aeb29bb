"""The read-only query path cannot write, and cannot reach files or URLs (readonly=1, not 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.collector import Storage, StorageError, embedded_dsn


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    store = Storage(embedded_dsn(tmp_path))
    store.migrate()
    yield store
    store.close()


def test_read_only_queries_cannot_read_local_files(storage: Storage, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t\n")
    sql = f"SELECT * FROM file('{secret}', 'LineAsString')"
    assert storage.query(sql)[1] == [("s3cr3t",)]  # the engine can, as the service itself
    with pytest.raises(StorageError, match=r"READONLY|readonly"):
        storage.query(sql, readonly=True)


def test_read_only_queries_cannot_write(storage: Storage) -> None:
    with pytest.raises(StorageError, match=r"READONLY|readonly"):
        storage.query("INSERT INTO agentwatch_anomalies (Id) VALUES ('x')", readonly=True)
    assert storage.query("SELECT count() FROM agentwatch_anomalies", readonly=True)[1] == [(0,)]
