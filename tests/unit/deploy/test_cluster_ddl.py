"""Cluster DDL: well-formed ON CLUSTER statements derived from the single-node schema.

The single-node path runs for real in embedded ClickHouse; the cluster statements, which need
Keeper and a cluster, are parsed by that same ClickHouse (``formatQuery``) and checked for shape.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentwatch.collector import ConfigError, ServiceSettings, Storage, embedded_dsn
from agentwatch.collector._cluster import (
    SHARDING_KEYS,
    ClusterDDLError,
    ClusterOptions,
    add_migrate_arguments,
    apply_cluster_migrations,
    cluster_statements,
    run_migrate,
    single_node_statements,
    to_cluster,
)
from agentwatch.collector._schema import (
    FULL_TEXT_SEARCH_VERSION,
    MIGRATIONS,
    SchemaOptions,
    traces_table_ddl,
)

CLUSTER = ClusterOptions("agentwatch")
VARIANTS = [
    SchemaOptions(full_text_search=True),
    SchemaOptions(database="telemetry", ttl_days=30, full_text_search=False),
]
CREATE = re.compile(
    r"\ACREATE (TABLE|MATERIALIZED VIEW|DATABASE) IF NOT EXISTS `(\w+)`(?:\.`(\w+)`)?"
    r" ON CLUSTER `agentwatch`"
)


class RecordingStorage(Storage):
    """The real embedded storage, recording every command it runs (our own seam)."""

    def __init__(self, dsn: str) -> None:
        self.commands: list[str] = []
        super().__init__(dsn)

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.commands.append(sql)
        super().command(sql, parameters)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingStorage]:
    storage = RecordingStorage(embedded_dsn(tmp_path_factory.mktemp("cluster-ddl")))
    yield storage
    storage.close()


def _parsed(storage: Storage, statement: str) -> str:
    """ClickHouse's own parser, formatting the statement back (raises on a syntax error)."""
    _, rows = storage.query("SELECT formatQuery({sql:String})", {"sql": statement})
    return str(rows[0][0])


def test_single_node_rendering_is_what_storage_migrate_applies(storage: RecordingStorage) -> None:
    assert storage.migrate() == [m.version for m in MIGRATIONS]
    options = SchemaOptions(full_text_search=storage.server_version >= FULL_TEXT_SEARCH_VERSION)
    assert storage.commands == single_node_statements(options)
    storage.commands.clear()
    assert storage.migrate() == []  # idempotent: the second run applies nothing


@pytest.mark.parametrize("options", VARIANTS, ids=["text-indexes", "bloom-ttl"])
def test_every_cluster_statement_is_valid_clickhouse_sql(
    storage: Storage, options: SchemaOptions
) -> None:
    statements = cluster_statements(options, CLUSTER)
    for statement in statements:
        assert CREATE.match(statement), statement.splitlines()[0]
        parsed = _parsed(storage, statement)  # ClickHouse's parser, unquoting names
        assert "ON CLUSTER agentwatch" in parsed, parsed


@pytest.mark.parametrize("options", VARIANTS, ids=["text-indexes", "bloom-ttl"])
def test_local_tables_are_replicated_and_distributed_tables_cover_them(
    options: SchemaOptions,
) -> None:
    statements = cluster_statements(options, CLUSTER)
    created: list[str] = []
    distributed: dict[str, str] = {}
    for statement in statements:
        match = CREATE.match(statement)
        assert match is not None
        kind, database, name = match.groups()
        if kind == "DATABASE":
            assert database == options.database
            continue
        assert database == options.database
        if name.endswith("_local"):
            engine = re.search(r"ENGINE = (\w+)\('([^']*)', '([^']*)'\)", statement)
            assert engine is not None, name
            assert engine[1].startswith("Replicated") and engine[1].endswith("MergeTree")
            assert "{shard}" in engine[2] and engine[3] == "{replica}"
        elif kind == "TABLE":
            engine = re.search(
                r"^ENGINE = Distributed\('(\w+)', '(\w+)', '(\w+)', (.+)\)$", statement, re.M
            )
            assert engine is not None, name
            cluster, db, local, key = engine.groups()
            assert (cluster, db, local) == ("agentwatch", options.database, name + "_local")
            assert local in created  # the local table first, so AS can copy its columns
            assert f"AS `{db}`.`{local}`" in statement
            assert key == SHARDING_KEYS[name]
            local_ddl = next(s for s in statements if f".`{local}` ON CLUSTER" in s)
            for column in re.findall(r"\b([A-Z]\w+)\b", key.replace("cityHash64", "")):
                assert re.search(rf"^\s+`?{column}`? ", local_ddl, re.M), (name, column)
            distributed[name] = key
        else:  # the materialized view reads and writes local tables: it fires per node
            assert re.search(r"^TO `\w+`\.`\w+_local`$", statement, re.M)
            assert re.search(r"^FROM `\w+`\.`\w+_local`$", statement, re.M)
        created.append(name)
    single = {
        m[1]
        for s in single_node_statements(options)
        if (m := re.match(r"CREATE TABLE IF NOT EXISTS `\w+`\.`(\w+)`", s))
    }
    assert set(distributed) == single  # the service and Grafana keep their table names
    assert "Distributed" not in "".join(s for s in statements if "_local` ON CLUSTER" in s)


def test_no_engine_or_column_is_lost_in_the_transform() -> None:
    options = SchemaOptions(full_text_search=False)
    single = traces_table_ddl(options)
    local = to_cluster(single, CLUSTER)[0]
    strip = re.compile(r"CREATE TABLE IF NOT EXISTS .*? \(|ENGINE = \w+\(.*?\)\n")
    assert strip.sub("", local.replace(" ON CLUSTER `agentwatch`", "")) == strip.sub("", single)


def test_shapes_without_a_cluster_rendering_are_refused() -> None:
    with pytest.raises(ClusterDDLError, match="ALTER TABLE"):
        to_cluster("ALTER TABLE `default`.`otel_traces` ADD COLUMN x String", CLUSTER)
    with pytest.raises(ClusterDDLError, match="sharding key"):
        to_cluster("CREATE TABLE IF NOT EXISTS `default`.`other` (x String) "
                   "ENGINE = MergeTree() ORDER BY x", CLUSTER)  # fmt: skip
    with pytest.raises(ValueError, match="cluster"):
        ClusterOptions("bad name; DROP")


class FakeCluster:
    """Answers like a cluster's Distributed migrations table; records what ran."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.versions: list[int] = []

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.commands.append(sql)
        if sql.startswith("INSERT INTO"):
            assert parameters is not None and "distributed_foreground_insert = 1" in sql
            self.versions.append(int(parameters["version"]))

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, *, readonly: bool = False
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        assert "agentwatch_schema_migrations` FINAL" in sql
        return ["Version"], [(v,) for v in self.versions]


def test_apply_on_a_cluster_records_versions_and_is_idempotent() -> None:
    fake = FakeCluster()
    options = SchemaOptions(full_text_search=False)
    assert apply_cluster_migrations(fake, options, CLUSTER) == [1, 2, 3, 4]
    ddl = [c for c in fake.commands if not c.startswith("INSERT")]
    assert ddl == cluster_statements(options, CLUSTER)
    fake.commands.clear()
    assert apply_cluster_migrations(fake, options, CLUSTER) == []
    assert all(c.startswith("CREATE") for c in fake.commands)  # bookkeeping tables only


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentwatch migrate")
    add_migrate_arguments(parser)
    return parser.parse_args(argv)


def test_migrate_print_and_apply(
    storage: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_migrate(_args("--cluster", "agentwatch", "--no-text-indexes")) == 0
    printed = capsys.readouterr().out
    expected = cluster_statements(SchemaOptions(full_text_search=False), CLUSTER)
    assert printed == ";\n\n".join(s.strip() for s in expected) + ";\n"
    assert run_migrate(_args("--print")) == 0
    assert capsys.readouterr().out.count("ON CLUSTER") == 0
    assert run_migrate(_args("--apply")) == 2
    assert "needs --clickhouse" in capsys.readouterr().err
    chdb = embedded_dsn(tmp_path)
    assert run_migrate(_args("--cluster", "c", "--clickhouse", chdb, "--apply")) == 2
    assert run_migrate(_args("--database", "bad-name")) == 2


def test_migrate_help_names_the_options() -> None:
    parser = argparse.ArgumentParser(prog="agentwatch migrate")
    add_migrate_arguments(parser)
    text = parser.format_help()
    for option in ("--cluster NAME", "--clickhouse DSN", "--print", "--apply", "{shard}"):
        assert option in text


class ClusterStorage(Storage):
    """A real Storage object whose schema commands and queries go to a FakeCluster (our own
    seam); the version query at open still reaches the embedded engine."""

    def __init__(self, dsn: str) -> None:
        self.cluster: FakeCluster | None = None
        super().__init__(dsn)
        self.cluster = FakeCluster()

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        assert self.cluster is not None
        self.cluster.command(sql, parameters)

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, *, readonly: bool = False
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        if self.cluster is None:
            return super().query(sql, parameters, readonly=readonly)
        return self.cluster.query(sql, parameters, readonly=readonly)


def test_serve_applies_the_cluster_schema_when_given_a_cluster(
    storage: RecordingStorage,
) -> None:
    # One embedded engine per process: the same path as the module's storage, which closes it.
    served = ClusterStorage(storage.dsn)
    assert served.migrate("agentwatch") == [1, 2, 3, 4]
    assert served.cluster is not None
    options = SchemaOptions(full_text_search=storage.server_version >= FULL_TEXT_SEARCH_VERSION)
    ddl = [c for c in served.cluster.commands if not c.startswith("INSERT")]
    assert ddl == cluster_statements(options, CLUSTER)
    assert storage.query("SELECT 1")[1] == [(1,)]  # the shared engine is untouched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"clickhouse_cluster": "agentwatch"}, "needs a ClickHouse server"),
        (
            {"clickhouse_cluster": "bad; name", "clickhouse_dsn": "http://ch:8123"},
            "must be a cluster name",
        ),
    ],
)
def test_a_cluster_setting_is_checked_at_start(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceSettings.from_env({}, data_dir=tmp_path, **overrides)
