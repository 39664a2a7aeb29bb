"""ClickHouse cluster DDL and ``agentwatch migrate``.

A cluster keeps each table twice: a local table on every node, under a Replicated engine (the
single-node engine with ``Replicated`` in front, Keeper path and replica name from the ``{shard}``
and ``{replica}`` macros), and a Distributed table over the local ones under the single-node name,
so the service, Grafana and an OpenTelemetry Collector exporter read and write ``otel_traces``
and ``agentwatch_*`` unchanged. Every statement carries ``ON CLUSTER``.

The cluster DDL is derived from the single-node DDL in ``_schema`` (a transform, so the column
lists exist once): ``CREATE TABLE`` becomes the ``_local`` Replicated table plus a Distributed
``CREATE TABLE ... AS`` it; the materialized view reads and writes the local tables, since a view
fires only on inserts into the node's own table; ``CREATE DATABASE`` gains ``ON CLUSTER``. A
statement of any other shape raises :class:`ClusterDDLError`, so a new kind of migration is
caught by the tests before it ships single-node only.

Sharding keys keep what must merge on one shard: a trace's spans and its lookup row
(``cityHash64(TraceId)``), an agent's anomalies (``cityHash64(Agent)``, so ReplacingMergeTree's
``FINAL`` sees every copy of one anomaly) and its remediation log, a migration's rows (Version).
The cluster's ``remote_servers`` entry must set ``internal_replication`` to true: a Distributed
insert then writes one replica per shard and replication copies it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._schema import (
    ANOMALIES_TABLE,
    FULL_TEXT_SEARCH_VERSION,
    INCIDENTS_TABLE,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    REMEDIATIONS_TABLE,
    TRACES_TABLE,
    SchemaOptions,
    migrations_table_ddl,
)
from ._schema_signals import SIGNAL_SHARDING_KEYS

__all__ = [
    "SHARDING_KEYS",
    "ClusterDDLError",
    "ClusterOptions",
    "add_migrate_arguments",
    "apply_cluster_migrations",
    "cluster_migration_statements",
    "cluster_statements",
    "run_migrate",
    "single_node_statements",
    "to_cluster",
]

SHARDING_KEYS: dict[str, str] = {
    TRACES_TABLE: "cityHash64(TraceId)",
    TRACES_TABLE + "_trace_id_ts": "cityHash64(TraceId)",
    ANOMALIES_TABLE: "cityHash64(Agent)",
    REMEDIATIONS_TABLE: "cityHash64(Agent)",
    INCIDENTS_TABLE: "cityHash64(Agent)",
    MIGRATIONS_TABLE: "Version",
    **SIGNAL_SHARDING_KEYS,
}

_IDENT = r"`((?:[^`\\]|\\.)+)`"
_QUALIFIED = _IDENT + r"\." + _IDENT
_CREATE_TABLE = re.compile(r"\ACREATE TABLE IF NOT EXISTS " + _QUALIFIED + r"[ \t]*")
_CREATE_VIEW = re.compile(r"\ACREATE MATERIALIZED VIEW IF NOT EXISTS " + _QUALIFIED + r"[ \t]*")
_CREATE_DATABASE = re.compile(r"\ACREATE DATABASE IF NOT EXISTS " + _IDENT + r"\s*\Z")
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree\(\)")
_TO = re.compile(r"^TO " + _QUALIFIED + r"$", re.MULTILINE)
_FROM = re.compile(r"^FROM " + _QUALIFIED + r"$", re.MULTILINE)


class ClusterDDLError(ValueError):
    """A single-node statement has no cluster rendering; the message quotes its first line."""


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Where and how the cluster keeps the tables.

    Attributes:
        cluster: Cluster name, as in the servers' ``remote_servers`` configuration.
        zookeeper_path: Keeper path of each local table; ``{shard}`` and ``{replica}`` are
            server macros, ``{database}`` and ``{table}`` are expanded by ClickHouse.
        replica_name: Replica name of each local table.
        local_suffix: Appended to a table's name for its local (Replicated) table.
    """

    cluster: str
    zookeeper_path: str = "/clickhouse/tables/{shard}/{database}/{table}"
    replica_name: str = "{replica}"
    local_suffix: str = "_local"

    def __post_init__(self) -> None:
        if not self.cluster or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.cluster):
            raise ValueError(f"cluster must be a cluster name, got {self.cluster!r}")
        if not re.fullmatch(r"\w+", self.local_suffix):
            raise ValueError(
                f"local_suffix must be an identifier suffix, got {self.local_suffix!r}"
            )
        for name in ("zookeeper_path", "replica_name"):
            if "'" in getattr(self, name) or "\\" in getattr(self, name):
                raise ValueError(f"{name} must not contain quotes or backslashes")

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER `{self.cluster}`"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "\\`") + "`"


def _unident(quoted: str) -> str:
    return quoted.replace("\\`", "`")


def to_cluster(statement: str, cluster: ClusterOptions) -> list[str]:
    """The ``ON CLUSTER`` statements standing for one single-node statement, in order.

    Raises:
        ClusterDDLError: The statement is not one of the shapes ``_schema`` renders.
    """
    if match := _CREATE_DATABASE.match(statement):
        return [f"CREATE DATABASE IF NOT EXISTS {_ident(_unident(match[1]))} {cluster.on_cluster}"]
    if match := _CREATE_TABLE.match(statement):
        return _table(statement, match, cluster)
    if match := _CREATE_VIEW.match(statement):
        return [_view(statement, match, cluster)]
    first = statement.strip().splitlines()[0] if statement.strip() else ""
    raise ClusterDDLError(f"no cluster rendering for: {first}")


def _table(statement: str, match: re.Match[str], cluster: ClusterOptions) -> list[str]:
    database, table = _unident(match[1]), _unident(match[2])
    key = SHARDING_KEYS.get(table)
    if key is None:
        raise ClusterDDLError(f"table {table} has no sharding key in SHARDING_KEYS")
    local = table + cluster.local_suffix
    qualified_local = f"{_ident(database)}.{_ident(local)}"
    body = statement[match.end() :]
    engines = _ENGINE.findall(body)
    if len(engines) != 1:
        raise ClusterDDLError(f"table {table}: expected one MergeTree-family engine")
    engine = f"('{cluster.zookeeper_path}', '{cluster.replica_name}')"
    local_ddl = f"CREATE TABLE IF NOT EXISTS {qualified_local} {cluster.on_cluster} " + _ENGINE.sub(
        lambda m: f"ENGINE = Replicated{m[1]}MergeTree{engine}", body
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {_ident(database)}.{_ident(table)} {cluster.on_cluster}\n"
        f"AS {qualified_local}\n"
        f"ENGINE = Distributed('{cluster.cluster}', '{database}', '{local}', {key})\n"
    )
    return [local_ddl, distributed]


def _view(statement: str, match: re.Match[str], cluster: ClusterOptions) -> str:
    database, view = _unident(match[1]), _unident(match[2])
    body = statement[match.end() :]

    def local(m: re.Match[str], keyword: str) -> str:
        table = _unident(m[2]) + cluster.local_suffix
        return f"{keyword} {_ident(_unident(m[1]))}.{_ident(table)}"

    body, targets = _TO.subn(lambda m: local(m, "TO"), body)
    body, sources = _FROM.subn(lambda m: local(m, "FROM"), body)
    if targets != 1 or sources != 1:
        raise ClusterDDLError(f"view {view}: expected one TO table and one FROM table")
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_ident(database)}.{_ident(view)} "
        f"{cluster.on_cluster}\n{body.lstrip()}"
    )


def single_node_statements(options: SchemaOptions) -> list[str]:
    """Every statement ``Storage.migrate`` runs on a fresh database, in order."""
    statements = [f"CREATE DATABASE IF NOT EXISTS `{options.database}`"]
    statements.append(migrations_table_ddl(options))
    for migration in MIGRATIONS:
        statements.extend(migration.statements(options))
    return statements


def _bookkeeping(options: SchemaOptions, cluster: ClusterOptions) -> list[str]:
    return [
        *to_cluster(f"CREATE DATABASE IF NOT EXISTS `{options.database}`", cluster),
        *to_cluster(migrations_table_ddl(options), cluster),
    ]


def cluster_migration_statements(
    options: SchemaOptions, cluster: ClusterOptions
) -> list[tuple[int, str, list[str]]]:
    """Each migration as (version, description, its ``ON CLUSTER`` statements)."""
    return [
        (
            migration.version,
            migration.description,
            [out for s in migration.statements(options) for out in to_cluster(s, cluster)],
        )
        for migration in MIGRATIONS
    ]


def cluster_statements(options: SchemaOptions, cluster: ClusterOptions) -> list[str]:
    """Every ``ON CLUSTER`` statement for a fresh cluster, in order (what ``--print`` shows)."""
    statements = _bookkeeping(options, cluster)
    for _, _, migration in cluster_migration_statements(options, cluster):
        statements.extend(migration)
    return statements


class _Executor(Protocol):
    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None: ...

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, *, readonly: bool = False
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...


def apply_cluster_migrations(
    storage: _Executor, options: SchemaOptions, cluster: ClusterOptions
) -> list[int]:
    """Apply pending migrations across the cluster; returns the versions applied now.

    Idempotent like ``Storage.migrate``: every statement is ``IF NOT EXISTS`` and each applied
    version is recorded in the Distributed migrations table with a foreground (synchronous)
    insert, so the next run, from any node, sees it. Blocking: each ``ON CLUSTER`` statement
    waits for the cluster's DDL queue (``distributed_ddl_task_timeout``).
    """
    for statement in _bookkeeping(options, cluster):
        storage.command(statement)
    table = f"{_ident(options.database)}.{_ident(MIGRATIONS_TABLE)}"
    done = {int(row[0]) for row in storage.query(f"SELECT Version FROM {table} FINAL")[1]}
    applied = []
    for version, description, statements in cluster_migration_statements(options, cluster):
        if version in done:
            continue
        for statement in statements:
            storage.command(statement)
        storage.command(
            f"INSERT INTO {table} (Version, Description)"
            " SETTINGS distributed_foreground_insert = 1"
            " SELECT {version:UInt32}, {description:String}",
            {"version": version, "description": description},
        )
        applied.append(version)
    return applied


_MIGRATE_DESCRIPTION = """\
Print or apply agentwatch's ClickHouse schema: the OpenTelemetry Collector exporter's trace
tables and agentwatch's anomaly and remediation tables, versioned and idempotent.

Without --cluster the DDL is the single-node schema `agentwatch serve` applies by itself at
start-up. With --cluster NAME every statement carries ON CLUSTER NAME: each table becomes a
Replicated* table named <table>_local on every node (Keeper path
/clickhouse/tables/{shard}/{database}/{table}, replica {replica}: both macros must be defined
on each server) and a Distributed table under the original name over them, so the service and
Grafana read and write the same table names. The cluster must set internal_replication=true."""

_MIGRATE_EPILOG = """\
environment:
  AGENTWATCH_CLICKHOUSE_DSN   the server DSN when --clickhouse is not given

examples:
  agentwatch migrate --cluster agentwatch --print > schema.sql
  agentwatch migrate --cluster agentwatch --clickhouse http://default:pw@ch-0:8123 --apply
"""


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``agentwatch migrate``'s options to its sub-parser."""
    parser.description = _MIGRATE_DESCRIPTION
    parser.epilog = _MIGRATE_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        help="render ON CLUSTER DDL for this cluster (Replicated engines under Distributed tables)",
    )
    parser.add_argument(
        "--clickhouse",
        dest="clickhouse_dsn",
        metavar="DSN",
        help="ClickHouse server DSN, http(s)://user:pass@host:8123 (needed by --apply)",
    )
    parser.add_argument("--database", default="default", help="database (default: default)")
    parser.add_argument(
        "--ttl-days", type=int, default=0, help="drop rows older than this (default 0: keep all)"
    )
    parser.add_argument(
        "--text-indexes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "use text indexes (ClickHouse >= 26.2) instead of bloom filters; "
            "default: ask the server when a DSN is given, else bloom filters"
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--print",
        dest="apply",
        action="store_false",
        help="print the DDL, statements separated by ';' (default)",
    )
    mode.add_argument(
        "--apply", dest="apply", action="store_true", help="apply pending migrations to the server"
    )
    parser.set_defaults(apply=False)


def run_migrate(args: argparse.Namespace) -> int:
    """Run ``agentwatch migrate``; returns the exit status (2: usage error, 1: ClickHouse error).

    Blocking: ``--apply`` waits for every statement (on a cluster, for its DDL queue).
    """
    from ._storage import Storage, StorageError

    dsn = args.clickhouse_dsn or os.environ.get("AGENTWATCH_CLICKHOUSE_DSN") or None
    try:
        cluster = ClusterOptions(args.cluster) if args.cluster else None
        SchemaOptions(database=args.database, ttl_days=args.ttl_days)  # validates both, early
        if args.apply and not dsn:
            raise ValueError("--apply needs --clickhouse DSN or AGENTWATCH_CLICKHOUSE_DSN")
        if cluster is not None and dsn and dsn.startswith("chdb://"):
            raise ValueError("--cluster needs a ClickHouse server DSN, not the embedded engine")
    except ValueError as exc:
        print(f"agentwatch migrate: {exc}", file=sys.stderr)
        return 2
    try:
        storage = Storage(dsn, database=args.database, ttl_days=args.ttl_days) if dsn else None
    except StorageError as exc:
        print(f"agentwatch migrate: {exc}", file=sys.stderr)
        return 1
    try:
        text_indexes = args.text_indexes
        if text_indexes is None:
            text_indexes = (
                storage is not None and storage.server_version >= FULL_TEXT_SEARCH_VERSION
            )
        options = SchemaOptions(
            database=args.database, ttl_days=args.ttl_days, full_text_search=text_indexes
        )
        if not args.apply:
            statements = (
                cluster_statements(options, cluster) if cluster else single_node_statements(options)
            )
            print(";\n\n".join(s.strip() for s in statements) + ";")
            return 0
        assert storage is not None  # --apply without a DSN returned above
        try:
            if cluster is None:
                applied = storage.migrate()  # the server's version picks the indexes, as serve does
            else:
                applied = apply_cluster_migrations(storage, options, cluster)
        except StorageError as exc:
            print(f"agentwatch migrate: {exc}", file=sys.stderr)
            return 1
        where = f"cluster {cluster.cluster}" if cluster else "the server"
        done = ", ".join(map(str, applied)) if applied else "none (up to date)"
        print(f"applied migrations to {where}: {done}")
        return 0
    finally:
        if storage is not None:
            storage.close()


def _main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - for `python -m`
    parser = argparse.ArgumentParser(prog="agentwatch migrate")
    add_migrate_arguments(parser)
    return run_migrate(parser.parse_args(argv))
