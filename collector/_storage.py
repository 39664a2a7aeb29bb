"""ClickHouse through clickhouse-connect: embedded (``chdb:///path``) or a server (``http(s)://``).

One code path for both. The embedded engine locks its directory to one process; threads of that
process share this object, which serialises calls on one client (clickhouse-connect clients are
not safe for concurrent queries).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect

from ._cluster import ClusterOptions, apply_cluster_migrations
from ._native import NativeEncoder
from ._schema import (
    FULL_TEXT_SEARCH_VERSION,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    SchemaOptions,
    migrations_table_ddl,
)

logger = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """ClickHouse refused or could not be reached; the message says which and why."""


def embedded_dsn(data_dir: str | Path) -> str:
    """The chdb DSN for the embedded engine under a data directory."""
    return "chdb://" + str((Path(data_dir) / "clickhouse").resolve())


class Storage:
    """A ClickHouse database holding agentwatch's tables.

    Args:
        dsn: ``chdb:///abs/path`` for the embedded engine, or ``http(s)://user:pass@host:8123/db``.
        database: Database for every table (created when missing).
        ttl_days: Retention for every table; 0 keeps rows forever.

    Thread-safe: calls are serialised. Blocking: every method waits for ClickHouse.
    """

    def __init__(self, dsn: str, *, database: str = "default", ttl_days: int = 0) -> None:
        self.dsn = dsn
        self.database = database
        self.ttl_days = ttl_days
        self._lock = threading.Lock()
        # The embedded engine inserts on this process's cores, beside the request threads that
        # acknowledge spans: run its insert threads at nice 10, so a large insert yields to
        # them (on 2 cores: 90-130 instead of 65-80 requests/s in A/B runs). ClickHouse applies
        # it only with CAP_SYS_NICE and restores the threads after the query; else a no-op.
        self._insert_settings = {"os_thread_priority": 10} if dsn.startswith("chdb://") else {}
        if dsn.startswith("chdb://"):
            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        try:
            self._client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:  # clickhouse-connect raises several unrelated types here
            raise StorageError(f"cannot open ClickHouse at {_redact(dsn)}: {exc}") from exc
        self.server_version = self._version()

    def _version(self) -> tuple[int, int]:
        text = str(self.query("SELECT version()")[1][0][0])
        major, minor = (int(part) for part in text.split(".")[:2])
        return major, minor

    def migrate(self, cluster: str | None = None) -> list[int]:
        """Apply pending migrations; returns the versions applied now (idempotent).

        With ``cluster``, every statement runs ``ON CLUSTER`` it: Replicated tables under
        Distributed ones (``agentwatch migrate --cluster``).
        """
        options = SchemaOptions(
            database=self.database,
            ttl_days=self.ttl_days,
            full_text_search=self.server_version >= FULL_TEXT_SEARCH_VERSION,
        )
        if cluster is not None:
            return apply_cluster_migrations(self, options, ClusterOptions(cluster))
        self.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        self.command(migrations_table_ddl(options))
        done = {
            int(row[0])
            for row in self.query(f"SELECT Version FROM `{self.database}`.{MIGRATIONS_TABLE}")[1]
        }
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements(options):
                self.command(statement)
            self.insert(
                MIGRATIONS_TABLE,
                [[migration.version, migration.description]],
                ["Version", "Description"],
            )
            logger.info("applied migration %d: %s", migration.version, migration.description)
            applied.append(migration.version)
        return applied

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._client.command(sql, parameters=parameters)
            except Exception as exc:
                raise StorageError(f"ClickHouse command failed: {exc}") from exc

    def insert(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows (each in ``columns`` order) in one block."""
        if not data:
            return
        with self._lock:
            try:
                self._client.insert(table, data, column_names=list(columns), database=self.database)
            except Exception as exc:
                raise StorageError(f"insert into {table} failed: {exc}") from exc

    def insert_native(self, table: str, columns: Sequence[str], data: bytes) -> None:
        """Insert Native-format bytes (one or more blocks of ``columns``, see ``_native``)."""
        if not data:
            return
        with self._lock:
            try:
                self._client.raw_insert(
                    table,
                    list(columns),
                    insert_block=data,
                    fmt="Native",
                    settings=self._insert_settings,
                )
            except Exception as exc:
                raise StorageError(f"insert into {table} failed: {exc}") from exc

    def encoder(self, table: str, columns: Sequence[str]) -> NativeEncoder:
        """A Native-block encoder for ``columns`` of ``table``, with the table's own types."""
        _, rows = self.query(
            "SELECT name, type FROM system.columns"
            " WHERE database = currentDatabase() AND table = {table:String}",
            {"table": table},
        )
        types = dict(rows)
        missing = [c for c in columns if c not in types]
        if missing:
            raise StorageError(f"table {table} has no column(s) {', '.join(missing)}")
        return NativeEncoder(table, columns, [types[c] for c in columns])

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, *, readonly: bool = False
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a query; returns (column names, rows). ``readonly`` forbids writes server-side."""
        # readonly=1, not 2: level 2 still allows table functions such as file() and url().
        settings = {"readonly": 1} if readonly else None
        with self._lock:
            try:
                result = self._client.query(sql, parameters=parameters, settings=settings)
            except Exception as exc:
                raise StorageError(f"ClickHouse query failed: {exc}") from exc
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _redact(dsn: str) -> str:
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return dsn
