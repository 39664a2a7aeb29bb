"""``agentwatch backtest history``: what a detector configuration would have flagged on the
spans already in ClickHouse, before enabling it (or its remediation) for real.

Spans are read through the running service's read-only query API or from the data directory
(as ``agentwatch query`` does), in pages ordered by (time, span id), normalized exactly as live
ingest does, and replayed through a fresh detector pipeline on event time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any, TextIO

from agentwatch.detectors import Anomaly, DetectorPipeline
from agentwatch.sdk import semconv

from ._normalize import to_event
from ._query import QueryError, QuerySource, add_source_arguments, open_source
from ._schema import ANOMALIES_TABLE, TRACE_COLUMNS, TRACES_TABLE
from ._storage import StorageError

PAGE = 5_000
# What the normalizer reads (Duration: decision latency), in the order of the cursor's first
# three: Timestamp, SpanId, TraceId.
_COLUMNS = ("Timestamp", "SpanId", "TraceId", "SpanName", "ServiceName",
            "ResourceAttributes", "SpanAttributes", "StatusCode", "Duration")  # fmt: skip
_INDEX = {name: i for i, name in enumerate(TRACE_COLUMNS)}
_AGO = re.compile(r"^(\d+)([smhd])$")
# The replay's defaults are the service's: the pipeline's own, read off one made with them (a
# compiled class keeps no signature to read them from).
_PIPELINE_DEFAULTS = DetectorPipeline()
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_history_arguments(datasets: Any) -> None:
    history = datasets.add_parser(
        "history",
        help="replay the spans in ClickHouse through a detector configuration",
        description=(
            "Read the spans of a time range from ClickHouse (through the running service's\n"
            "API, or from --data-dir when none runs), replay them through the detectors with\n"
            "the settings given here, and print what they would have flagged, beside what the\n"
            "service recorded. Nothing is written."
        ),
        epilog=(
            "examples:\n"
            "  agentwatch backtest history --since 24h\n"
            "  agentwatch backtest history --since 2026-11-20T00:00:00Z --service research-agent"
            " \\\n      --rate-warning-z 5 --data-dir ./agentwatch-data\n"
            "  agentwatch backtest history --since 7d --session-patterns"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(history)
    history.add_argument("--since", default="24h", help="RFC 3339 time or an age: 30m, 24h, 7d")
    history.add_argument("--until", help="RFC 3339 time (default: now)")
    history.add_argument("--service", help="only this cohort (service.name)")
    for flag, name in (
        ("--loop-min-repeats", "loop_min_repeats"),
        ("--rate-warning-z", "rate_warning_z"),
        ("--rate-critical-z", "rate_critical_z"),
    ):
        default = getattr(_PIPELINE_DEFAULTS, name)
        history.add_argument(
            flag, type=type(default), default=default, help=f"default {default:g}, the service's"
        )
    history.add_argument(
        "--session-patterns",
        action="store_true",
        help="also judge sessions against their cohort's (session_pattern, off in the service "
        "unless its config says session_patterns: true)",
    )
    history.add_argument(
        "--session-min-sessions",
        type=int,
        default=5000,
        help="sessions a cohort learns before any is judged (default 5000)",
    )
    history.add_argument("--show", type=int, default=20, help="anomalies listed (default 20)")


def _time_ns(text: str, now: dt.datetime) -> int:
    match = _AGO.match(text.strip())
    if match:
        moment = now - dt.timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
    else:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"{text!r} needs a time zone, e.g. a trailing Z")
    return int(moment.timestamp() * 1e9)


def _spans(
    source: QuerySource, since_ns: int, until_ns: int, service: str | None
) -> Iterator[list[Any]]:
    """Rows shaped like ingest's (TRACE_COLUMNS), oldest first, a page at a time.

    Pages follow a keyset of (time, span id, trace id, agent): ids alone can repeat across
    agents or re-sent batches, and a page edge inside such a tie must lose nothing.
    """
    agent = f"ResourceAttributes['{semconv.SERVICE_INSTANCE_ID}']"
    key = f"(toUnixTimestamp64Nano(Timestamp), SpanId, TraceId, {agent})"
    where = (
        "Timestamp >= fromUnixTimestamp64Nano({since:Int64})"
        " AND Timestamp < fromUnixTimestamp64Nano({until:Int64})"
        f" AND {key} > ({{ts:Int64}}, {{span:String}}, {{trace:String}}, {{agent:String}})"
    )
    if service:
        where += " AND ServiceName = {service:String}"
    select = ", ".join(
        "toUnixTimestamp64Nano(Timestamp)" if c == "Timestamp" else c for c in _COLUMNS
    )
    sql = (
        f"SELECT {select}, {agent} FROM {TRACES_TABLE} WHERE {where}"
        f" ORDER BY Timestamp, SpanId, TraceId, {agent}"
    )
    cursor: tuple[int, str, str, str] = (0, "", "", "")
    while True:
        params: dict[str, Any] = dict(zip(("ts", "span", "trace", "agent"), cursor, strict=True))
        params |= {"since": since_ns, "until": until_ns}
        if service:
            params["service"] = service
        page = source.query(f"{sql} LIMIT {PAGE}", params).rows
        for values in page:
            row: list[Any] = [None] * len(TRACE_COLUMNS)
            for name, value in zip(_COLUMNS, values, strict=False):
                row[_INDEX[name]] = int(value) if name in ("Timestamp", "Duration") else value
            yield row
        if len(page) < PAGE:
            return
        last = page[-1]
        cursor = (int(last[0]), str(last[1]), str(last[2]), str(last[-1]))


def replay(
    source: QuerySource,
    pipeline: DetectorPipeline,
    since_ns: int,
    until_ns: int,
    service: str | None = None,
) -> tuple[int, list[Anomaly]]:
    """(spans replayed, anomalies raised), the pipeline's clock set to each event's time."""
    now = [0]
    pipeline.clock = lambda: now[0]
    spans, found = 0, []
    for row in _spans(source, since_ns, until_ns, service):
        spans += 1
        event = to_event(row)
        now[0] = event.ts_ns
        found += pipeline.process(event)
    return spans, found


def _recorded(source: QuerySource, since_ns: int, until_ns: int, service: str | None) -> int:
    where = "OnsetAt >= fromUnixTimestamp64Nano({since:Int64})"
    where += " AND OnsetAt < fromUnixTimestamp64Nano({until:Int64})"
    params: dict[str, Any] = {"since": since_ns, "until": until_ns}
    if service:
        where += " AND Service = {service:String}"
        params["service"] = service
    rows = source.query(f"SELECT count() FROM {ANOMALIES_TABLE} FINAL WHERE {where}", params).rows
    return int(rows[0][0])


def run_history(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout  # resolved per call, not at import
    now = dt.datetime.now(dt.UTC)
    try:
        since_ns = _time_ns(args.since, now)
        until_ns = _time_ns(args.until, now) if args.until else int(now.timestamp() * 1e9)
        pipeline = DetectorPipeline(
            loop_min_repeats=args.loop_min_repeats,
            rate_warning_z=args.rate_warning_z,
            rate_critical_z=args.rate_critical_z,
            session_patterns=args.session_patterns,
            session_min_sessions=args.session_min_sessions,
        )
    except ValueError as exc:
        print(f"agentwatch backtest history: {exc}", file=sys.stderr)
        return 2
    try:
        source = open_source(args)
    except (QueryError, StorageError) as exc:
        print(f"agentwatch backtest history: {exc}", file=sys.stderr)
        return 1
    try:
        spans, found = replay(source, pipeline, since_ns, until_ns, args.service)
        recorded = _recorded(source, since_ns, until_ns, args.service)
    except (QueryError, StorageError) as exc:
        print(f"agentwatch backtest history: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
    by_kind = Counter((a.detector, str(a.severity)) for a in found)
    print(f"replayed {spans:,} spans of {len(pipeline)} agents", file=out)
    print(
        f"would have flagged {len(found)} anomalies (recorded by the service: {recorded})", file=out
    )
    for (detector, severity), n in sorted(by_kind.items()):
        print(f"  {detector:<12} {severity:<8} {n}", file=out)
    for a in found[: args.show]:
        at = dt.datetime.fromtimestamp(a.onset_ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {at}  {a.severity:<8} {a.detector:<12} {a.summary}", file=out)
    return 0
