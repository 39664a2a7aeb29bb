"""``agentwatch postmortem``: what one agent did, what agentwatch saw and did about it.

:func:`build_report` reads ClickHouse (through any :class:`QuerySource`: the service's read-only
API or an embedded directory) and returns a :class:`Report`: actions by tool over time,
heartbeats and their gaps, state transitions, checkpoints, anomalies with evidence and baseline,
the remediation log (control webhooks, notifications, breaker transitions, rollbacks) and, where
the log allows, each recovery's RTO and RPO. ``Report.to_markdown()`` and ``Report.to_html()``
(one self-contained file, charts as embedded PNGs) render it; see ``_postmortem_render``.

This module holds the reading (the queries, and the ``agentwatch postmortem`` command); the report's
types and what is derived from the rows (gaps, recoveries, timeline) are in ``_postmortem_report``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from agentwatch.sdk import semconv

from ._ops_api import AGENT_KEY_SQL
from ._postmortem_report import (
    GAP_INTERVALS,
    NS,
    Gap,
    LogEntry,
    Recovery,
    Report,
    TimelineEntry,
    ToolSummary,
    heartbeat_gaps,
    recoveries,
    timeline,
)
from ._query import QueryError, QuerySource, StorageSource, add_source_arguments, open_source
from ._schema import ANOMALIES_TABLE, REMEDIATIONS_TABLE, TRACES_TABLE
from ._storage import Storage

__all__ = [
    "GAP_INTERVALS",
    "INCIDENT_AFTER_NS",
    "INCIDENT_BEFORE_NS",
    "MAX_ROWS",
    "NS",
    "POSTMORTEM_EPILOG",
    "POSTMORTEM_HELP",
    "Gap",
    "LogEntry",
    "Recovery",
    "Report",
    "TimelineEntry",
    "ToolSummary",
    "add_postmortem_arguments",
    "baseline",
    "build_report",
    "heartbeat_gaps",
    "parse_time",
    "recoveries",
    "run_postmortem",
    "timeline",
]

MAX_ROWS = 50_000
# An --incident without --since/--until: this much before its onset and after detection.
INCIDENT_BEFORE_NS, INCIDENT_AFTER_NS = 10 * 60 * NS, 15 * 60 * NS


def _rows(source: QuerySource, sql: str, params: Mapping[str, Any]) -> list[list[Any]]:
    return source.query(sql, params).rows


def _ns(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(str(value)).timestamp() * NS) if value else 0


def build_report(
    source: Storage | QuerySource,
    agent: str,
    since_ns: int,
    until_ns: int,
    *,
    incident: str = "",
    clock: Any = time.time_ns,
) -> Report:
    """Read everything about ``agent`` between ``since_ns`` and ``until_ns`` (inclusive).

    Blocking (a dozen read-only queries); pure otherwise: the same data gives the same report.
    """
    if until_ns <= since_ns:
        raise ValueError(f"until must be after since, got {since_ns}..{until_ns}")
    if isinstance(source, Storage):
        source = StorageSource(source)
    p = {"agent": agent, "since": since_ns, "until": until_ns}
    window = (
        "Timestamp BETWEEN fromUnixTimestamp64Nano({since:Int64})"
        " AND fromUnixTimestamp64Nano({until:Int64})"
    )
    mine = f"{AGENT_KEY_SQL} = {{agent:String}} AND {window}"
    tool = f"SpanAttributes['{semconv.GEN_AI_TOOL_NAME}']"
    is_action = f"SpanAttributes['{semconv.GEN_AI_OPERATION_NAME}'] = '{semconv.OP_EXECUTE_TOOL}'"
    ts = "toUnixTimestamp64Nano(Timestamp)"
    report = Report(agent, "", since_ns, until_ns, clock(), incident=incident)

    for row in _rows(
        source,
        f"SELECT {tool} AS tool, count() AS calls, countIf(StatusCode = 'Error'), min({ts}),"
        f" max({ts}), quantile(0.5)(Duration) / 1e6,"
        f" uniqExact(SpanAttributes['{semconv.ACTION_FINGERPRINT}'])"
        f" FROM {TRACES_TABLE} WHERE {mine} AND {is_action} GROUP BY tool ORDER BY calls DESC",
        p,
    ):
        name, calls, errors, first, last, p50, distinct = row
        report.tools.append(
            ToolSummary(str(name), int(calls), int(errors), int(first), int(last),
                        float(p50 or 0), int(distinct))
        )  # fmt: skip
    span_s = (until_ns - since_ns) / NS
    report.bucket_s = max(1, int(span_s // 120) or 1)
    top = {t.tool for t in report.tools[:8]}
    for bucket, name, calls in _rows(
        source,
        f"SELECT intDiv({ts}, {{bucket:Int64}}) * {{bucket:Int64}} AS b, {tool}, count()"
        f" FROM {TRACES_TABLE} WHERE {mine} AND {is_action} GROUP BY b, {tool} ORDER BY b",
        {**p, "bucket": report.bucket_s * NS},
    ):
        report.series.append((int(bucket), str(name) if name in top else "other", int(calls)))
    for name, service, count in _rows(
        source,
        f"SELECT SpanName, any(ServiceName), count() AS n FROM {TRACES_TABLE} WHERE {mine}"
        " GROUP BY SpanName ORDER BY n DESC LIMIT 30",
        p,
    ):
        report.signals.append((str(name), int(count)))
        report.service = report.service or str(service)

    status = f"SpanAttributes['{semconv.AGENT_STATUS}']"
    interval = f"toFloat64OrZero(SpanAttributes['{semconv.HEARTBEAT_INTERVAL_S}'])"
    report.heartbeats = [
        (int(t), str(s), float(i))
        for t, s, i in _rows(
            source,
            f"SELECT {ts} AS t, {status}, {interval} FROM {TRACES_TABLE} WHERE {mine}"
            f" AND SpanName = '{semconv.SPAN_HEARTBEAT}' ORDER BY t LIMIT {MAX_ROWS}",
            p,
        )
    ]
    report.gaps = heartbeat_gaps(report.heartbeats, until_ns)
    attr = "SpanAttributes['{}']".format
    report.transitions = [
        (int(t), str(a), str(b))
        for t, a, b in _rows(
            source,
            f"SELECT {ts} AS t, {attr(semconv.STATE_FROM)}, {attr(semconv.STATE_TO)}"
            f" FROM {TRACES_TABLE} WHERE {mine} AND SpanName = '{semconv.SPAN_STATE_TRANSITION}'"
            f" ORDER BY t LIMIT {MAX_ROWS}",
            p,
        )
    ]
    report.checkpoints = [
        (int(t), str(c), int(s))
        for t, c, s in _rows(
            source,
            f"SELECT {ts} AS t, {attr(semconv.CHECKPOINT_ID)},"
            f" toInt64OrZero({attr(semconv.CHECKPOINT_STEP)}) FROM {TRACES_TABLE} WHERE {mine}"
            f" AND SpanName = '{semconv.SPAN_CHECKPOINT}' ORDER BY t LIMIT {MAX_ROWS}",
            p,
        )
    ]
    detected = "DetectedAt BETWEEN fromUnixTimestamp64Nano({since:Int64})" \
        " AND fromUnixTimestamp64Nano({until:Int64})"  # fmt: skip
    for row in _rows(
        source,
        "SELECT Id, Detector, Severity, Score, Threshold, toUnixTimestamp64Nano(OnsetAt),"
        " toUnixTimestamp64Nano(DetectedAt) AS d, Summary, Evidence, TraceId, SpanId, Service"
        f" FROM {ANOMALIES_TABLE} FINAL WHERE Agent = {{agent:String}} AND {detected}"
        f" ORDER BY d, Id LIMIT {MAX_ROWS}",
        p,
    ):
        evidence = _evidence(row[8])
        report.anomalies.append(
            {
                "id": str(row[0]), "detector": str(row[1]), "severity": str(row[2]),
                "score": float(row[3]), "threshold": float(row[4]), "onset_ns": int(row[5]),
                "detected_ns": int(row[6]),
                "summary": str(row[7]) or str(evidence.get("summary", "")),
                "evidence": evidence, "baseline": baseline(evidence),
                "trace_id": str(row[9]), "span_id": str(row[10]),
            }
        )  # fmt: skip
        report.service = report.service or str(row[11])
    report.log = [
        LogEntry(_ns(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), int(r[6]),
                 bool(r[7]), str(r[8]), float(r[9]))
        for r in _rows(
            source,
            f"SELECT {ts} AS t, Kind, Action, AnomalyId, WebhookId, Attempts, StatusCode, Ok,"
            f" Error, LatencyMs FROM {REMEDIATIONS_TABLE} WHERE Agent = {{agent:String}}"
            f" AND {window} ORDER BY t LIMIT {MAX_ROWS}",
            p,
        )
    ]  # fmt: skip
    report.recoveries = recoveries(report)
    report.timeline = timeline(report)
    return report


def _evidence(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"raw": str(text)}
    return value if isinstance(value, dict) else {"value": value}


def baseline(evidence: Mapping[str, Any]) -> str:
    """The evidence's expected behavior (``expected*``/``baseline*`` keys), as one line."""
    parts = [
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sorted(evidence.items())
        if k.startswith(("expected", "baseline"))
    ]
    return ", ".join(parts)


# --- the command -------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

POSTMORTEM_HELP = "write an agent's post-mortem (Markdown or one self-contained HTML file)"
POSTMORTEM_EPILOG = """\
times: RFC 3339 (2026-01-02T03:04:05Z) or an age (90s, 30m, 2h, 1d ago); default the last hour,
or, with --incident, 10 minutes before its onset to 15 minutes after its detection.

examples:
  agentwatch postmortem --agent support-agent-07 --since 2h --format html --out pm.html
  agentwatch postmortem --incident 3f1c...  # an anomaly id: its agent and time
"""


def parse_time(text: str, now_ns: int) -> int:
    """RFC 3339 (a zone is required) or an age like ``30m``, to ns since the epoch."""
    match = _RELATIVE.match(text.strip())
    if match:
        return now_ns - int(float(match.group(1)) * _UNIT_S[match.group(2)] * NS)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"{text!r} is neither RFC 3339 nor an age like 30m: {exc}") from exc
    if moment.tzinfo is None:
        raise QueryError(f"{text!r} has no time zone; add Z or +00:00")
    return int(moment.timestamp() * NS)


def add_postmortem_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``agentwatch postmortem``."""
    parser.add_argument("--agent", help="the agent's instance id (service.instance.id)")
    parser.add_argument("--since", help="start: RFC 3339 or an age (default 1h)")
    parser.add_argument("--until", help="end: RFC 3339 or an age (default now)")
    parser.add_argument(
        "--incident", metavar="ID", help="an anomaly id, or AGENT:DETECTED_NS, to centre on"
    )
    parser.add_argument("--format", choices=("md", "html"), default="md", help="output format")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here (default stdout)")
    add_source_arguments(parser)


def _incident(source: QuerySource, incident: str) -> tuple[str, int, int]:
    """(agent, onset ns, detected ns) of an anomaly id or ``agent:detected_ns``."""
    rows = source.query(
        "SELECT Agent, toUnixTimestamp64Nano(OnsetAt), toUnixTimestamp64Nano(DetectedAt)"
        f" FROM {ANOMALIES_TABLE} FINAL WHERE Id = {{id:String}} LIMIT 1",
        {"id": incident},
    ).rows
    if rows:
        return str(rows[0][0]), int(rows[0][1]), int(rows[0][2])
    agent, _, detected = incident.rpartition(":")
    if agent and detected.isdigit():
        return agent, int(detected), int(detected)
    raise QueryError(f"no anomaly {incident!r}: pass an anomaly id or AGENT:DETECTED_NS")


def run_postmortem(args: argparse.Namespace, *, environ: Mapping[str, str] = os.environ) -> int:
    """Run ``agentwatch postmortem``; exit code 0 on success, 1 on errors (printed)."""
    now = time.time_ns()
    try:
        if not args.agent and not args.incident:
            raise QueryError("say which agent: --agent ID (or --incident ID)")
        source = open_source(args, environ)
        try:
            agent = args.agent
            until = parse_time(args.until, now) if args.until else now
            since = parse_time(args.since, now) if args.since else until - 3600 * NS
            if args.incident:
                found, onset, detected = _incident(source, args.incident)
                if agent and agent != found:
                    raise QueryError(f"incident {args.incident} is of agent {found}, not {agent}")
                agent = found
                since = parse_time(args.since, now) if args.since else onset - INCIDENT_BEFORE_NS
                until = parse_time(args.until, now) if args.until else detected + INCIDENT_AFTER_NS
            if until <= since:
                raise QueryError("--until must be after --since")
            report = build_report(source, agent, since, until, incident=args.incident or "")
        finally:
            source.close()
    except QueryError as exc:
        print(f"agentwatch postmortem: {exc}", file=sys.stderr)
        return 1
    text = report.to_html() if args.format == "html" else report.to_markdown()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(text)} bytes)", file=sys.stderr)
    if not (report.tools or report.signals or report.anomalies or report.log):
        print(f"agentwatch postmortem: no data for agent {agent!r} in that window",
              file=sys.stderr)  # fmt: skip
    return 0
