"""``agentwatch query``: read-only SQL over agentwatch's ClickHouse, with a readable table.

The embedded engine locks its directory to one process (DESIGN.md, "Storage"), so a command that
reads data goes through the running service's API (``POST /api/v1/query``, executed with
ClickHouse's ``readonly`` setting) and opens the directory itself only when no service runs.
:func:`open_source` makes that choice; :class:`QuerySource` is the seam both ways share.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import fcntl
import io
import ipaddress
import json
import math
import os
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from agentwatch.sdk import AgentwatchError, semconv

from ._storage import Storage, StorageError, embedded_dsn

DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_MAX_ROWS = 10_000
MAX_EXECUTION_TIME_S = 30
QUERY_PATH = "/api/v1/query"

# A statement we may wrap in ``SELECT * FROM (...) LIMIT n`` (SHOW, DESCRIBE, EXPLAIN are not).
_WRAPPABLE = re.compile(r"^(?:\s+|--[^\n]*\n|/\*.*?\*/|\()*(?:select|with)\b", re.I | re.S)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Functions that reach outside ClickHouse's own tables (files, URLs, other databases, programs).
# ClickHouse's ``readonly = 2`` still allows them; refusing them here is defence in depth.
_OUTSIDE = re.compile(
    r"[`\"]?\b(file|fileCluster|url|urlCluster|s3|s3Cluster|gcs|oss|azureBlobStorage\w*|hdfs\w*|"
    r"remote|remoteSecure|cluster|clusterAllReplicas|mysql|postgresql|mongodb|redis|sqlite|"
    r"jdbc|odbc|executable|deltaLake\w*|iceberg\w*|hudi\w*|hive|python|arrowFlight|"
    r"ytsaurus|paimon\w*)\b[`\"]?\s*\(",
    re.I,
)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


class QueryError(AgentwatchError):
    """A query could not run; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows (values as ClickHouse returned them); ``truncated`` when capped."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False


class QuerySource(Protocol):
    """Where read-only SQL runs: the service's API or an embedded directory."""

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None, /) -> QueryResult: ...

    def close(self) -> None: ...


def run_readonly(
    storage: Storage,
    sql: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> QueryResult:
    """Run one statement with ClickHouse's ``readonly`` setting, keeping at most ``max_rows``.

    A SELECT (or WITH) is wrapped so ClickHouse itself stops after ``max_rows + 1`` rows and
    after ``MAX_EXECUTION_TIME_S``; other statements (SHOW, DESCRIBE) run as given. Blocking.

    Raises:
        QueryError: ClickHouse refused the statement (its message says why).
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    statement = sql.strip().rstrip(";").strip()
    if not statement:
        raise QueryError("the SQL statement is empty")
    outside = _OUTSIDE.search(_COMMENT.sub(" ", statement))
    if outside:
        raise QueryError(
            f"{outside.group(1)}() reaches outside agentwatch's tables; cannot execute it in"
            " readonly mode (READONLY)"
        )
    attempts = [statement]
    if _WRAPPABLE.match(statement):
        limited = f"SELECT * FROM (\n{statement}\n) LIMIT {max_rows + 1}"
        # Under readonly = 1 no setting may be changed: then the limit alone.
        attempts = [f"{limited} SETTINGS max_execution_time = {MAX_EXECUTION_TIME_S}", limited]
    for i, attempt in enumerate(attempts):
        try:
            columns, rows = storage.query(attempt, dict(parameters or {}), readonly=True)
            break
        except StorageError as exc:
            message = str(exc).removeprefix("ClickHouse query failed: ")
            if i + 1 < len(attempts) and "Cannot modify 'max_execution_time'" in message:
                continue
            raise QueryError(message) from exc
    return QueryResult(columns, [list(r) for r in rows[:max_rows]], len(rows) > max_rows)


class StorageSource:
    """Queries a :class:`Storage` directly (closes it only when it owns it)."""

    def __init__(self, storage: Storage, *, owned: bool = False) -> None:
        self.storage = storage
        self._owned = owned

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None, /) -> QueryResult:
        return run_readonly(self.storage, sql, parameters)

    def close(self) -> None:
        if self._owned:
            self.storage.close()


class ApiSource:
    """Queries a running service through ``POST /api/v1/query``.

    Args:
        url: The service's API base URL, e.g. ``http://127.0.0.1:8080``.
        token: The API bearer token (``AGENTWATCH_API_TOKEN``), None when the API is open.
        client: An httpx client to use (not closed here); by default one of its own.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = MAX_EXECUTION_TIME_S + 10,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_rows = max_rows
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout_s)

    def __repr__(self) -> str:  # never the token
        return f"ApiSource({self.url!r})"

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None, /) -> QueryResult:
        body = {"sql": sql, "parameters": dict(parameters or {}), "max_rows": self.max_rows}
        try:
            response = self._client.post(self.url + QUERY_PATH, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise QueryError(
                f"cannot reach the agentwatch API at {self.url} ({exc}); is `agentwatch serve`"
                " running there? Without a service, pass --data-dir DIR instead"
            ) from exc
        if response.status_code == 401:
            raise QueryError(
                f"the API at {self.url} refused the token: set {semconv.API_TOKEN_ENV} to the"
                " service's API token"
            )
        if response.status_code == 404:
            raise QueryError(f"{self.url} has no {QUERY_PATH}: is it an agentwatch service?")
        if not response.is_success:
            raise QueryError(
                f"the API refused the query ({response.status_code}): {_detail(response)}"
            )
        data = response.json()
        return QueryResult(list(data["columns"]), data["rows"], bool(data.get("truncated")))

    def close(self) -> None:
        if self._own_client:
            self._client.close()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


def open_directory(data_dir: Path, *, api_hint: str = DEFAULT_API_URL) -> StorageSource:
    """Open the embedded ClickHouse under ``data_dir`` for reading (nothing is migrated)."""
    path = Path(data_dir) / "clickhouse"
    if not path.is_dir():
        raise QueryError(
            f"no agentwatch data in {data_dir} (no {path}): pass the --data-dir of"
            " `agentwatch serve`, or --api URL to ask a running service"
        )
    try:
        storage = Storage(embedded_dsn(data_dir))
    except StorageError as exc:
        if "Cannot lock file" in str(exc) or _locked(path / "status"):
            raise QueryError(
                f"a service is running on this directory; use --api {api_hint} (its API URL;"
                f" with {semconv.API_TOKEN_ENV} if it has a token)"
            ) from exc
        raise QueryError(str(exc)) from exc
    return StorageSource(storage, owned=True)


def _locked(status: Path) -> bool:
    """Whether another process holds ClickHouse's lock on its ``status`` file (flock)."""
    try:
        with status.open("rb") as file:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(file, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _api_answers(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/healthz", timeout=0.5).is_success
    except httpx.HTTPError:
        return False


def open_source(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> QuerySource:
    """The source ``--api`` / ``--data-dir`` ask for; with neither, a service answering on
    ``AGENTWATCH_API_URL`` (default 127.0.0.1:8080), else ``AGENTWATCH_DATA_DIR``."""
    token = environ.get(semconv.API_TOKEN_ENV) or None
    max_rows = getattr(args, "max_rows", DEFAULT_MAX_ROWS)
    if args.api:
        return ApiSource(args.api, token=token, max_rows=max_rows)
    if args.data_dir is not None:
        return open_directory(args.data_dir)
    url = environ.get(semconv.API_URL_ENV) or DEFAULT_API_URL
    if _api_answers(url):
        return ApiSource(url, token=token, max_rows=max_rows)
    return open_directory(Path(environ.get("AGENTWATCH_DATA_DIR") or "agentwatch-data"))


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--api URL`` and ``--data-dir DIR``, shared by query and postmortem."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--api",
        metavar="URL",
        help="a running service's API, e.g. http://127.0.0.1:8080 (token from "
        f"{semconv.API_TOKEN_ENV})",
    )
    where.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="open this directory (no service running)"
    )


# --- values and formats ------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """A ClickHouse value as JSON: times in ISO 8601, maps as objects, NaN as null. Pure."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal | uuid.UUID | ipaddress.IPv4Address):
        return str(value)
    return str(value)


def _cell(value: Any, width: int) -> str:
    if isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))
    else:
        text = "" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: QueryResult, *, max_width: int = 60) -> str:
    """An aligned text table, numbers right-aligned, wide cells cut at ``max_width``."""
    numeric = [
        bool(result.rows)
        and all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in result.rows)
        for i in range(len(result.columns))
    ]
    header = [_cell(c, max_width) for c in result.columns]
    body = [[_cell(v, max_width) for v in row] for row in result.rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in body]
    count = len(result.rows)
    footer = f"({count} row{'s' if count != 1 else ''}"
    if result.truncated:
        footer += f"; stopped at {count}: add a LIMIT or raise --max-rows"
    return "\n".join([*lines, footer + ")"])


def format_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(
            [
                json.dumps(jsonable(v)) if isinstance(v, Mapping | list | tuple) else jsonable(v)
                for v in row
            ]
        )
    return out.getvalue()


def format_json(result: QueryResult) -> str:
    """A JSON array of objects, one per row (keys in column order)."""
    rows = [dict(zip(result.columns, jsonable(row), strict=True)) for row in result.rows]
    return json.dumps(rows, ensure_ascii=False, indent=1)


FORMATS = {"table": format_table, "csv": format_csv, "json": format_json}


# --- the command -------------------------------------------------------------------------------
QUERY_HELP = "run read-only SQL on agentwatch's ClickHouse (table, CSV or JSON)"
QUERY_EPILOG = """\
examples:
  agentwatch query "SELECT Detector, count() FROM agentwatch_anomalies GROUP BY Detector"
  agentwatch query --param agent=support-agent-07 --format csv \\
      "SELECT Timestamp, SpanName FROM otel_traces
       WHERE ResourceAttributes['service.instance.id'] = {agent:String} ORDER BY Timestamp"

Ten post-mortem recipes: docs/recipes.md. With a service running, the query goes through its
API (POST /api/v1/query, read-only); without one, --data-dir opens the directory directly.
"""


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``agentwatch query``."""
    parser.add_argument("sql", metavar="SQL", help="one ClickHouse statement (read-only)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="table", help="output")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a query parameter for {NAME:Type} in the SQL (repeatable)",
    )
    parser.add_argument(
        "--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="stop after this many rows"
    )
    add_source_arguments(parser)


def parse_params(items: Sequence[str]) -> dict[str, str]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _PARAM_NAME.match(name):
            raise QueryError(f"--param must be NAME=VALUE with NAME an identifier, got {item!r}")
        params[name] = value
    return params


def run_query(args: argparse.Namespace, *, environ: Mapping[str, str] = os.environ) -> int:
    """Run ``agentwatch query``; prints the result, or the error and what to do. Exit code."""
    try:
        if args.max_rows < 1:
            raise QueryError(f"--max-rows must be >= 1, got {args.max_rows}")
        params = parse_params(args.param)
        source = open_source(args, environ)
        try:
            if isinstance(source, StorageSource):
                result = run_readonly(source.storage, args.sql, params, max_rows=args.max_rows)
            else:
                result = source.query(args.sql, params)
        finally:
            source.close()
    except QueryError as exc:
        print(f"agentwatch query: {exc}", file=sys.stderr)
        return 1
    text = FORMATS[args.format](result)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if result.truncated and args.format != "table":
        print(f"agentwatch query: stopped at {len(result.rows)} rows", file=sys.stderr)
    return 0
