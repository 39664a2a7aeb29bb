"""What a post-mortem holds, and what follows from it without any I/O.

:class:`Report` (one agent over a window) and its entries: tools, heartbeat gaps, remediation log
entries, recoveries and the timeline. :func:`heartbeat_gaps`, :func:`recoveries` and
:func:`timeline` derive the report's findings from the rows ``_postmortem.build_report`` read;
they are pure, so the same rows always give the same report.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from agentwatch.sdk import semconv

NS = 1_000_000_000
# A heartbeat gap: more than this many intervals without a heartbeat.
GAP_INTERVALS = 2.0
_OPEN_STATES = (semconv.BREAKER_OPEN, semconv.BREAKER_FORCED_OPEN)


@dataclass(frozen=True, slots=True)
class ToolSummary:
    """The calls of one tool in the window: count, errors, first and last, median latency."""

    tool: str
    calls: int
    errors: int
    first_ns: int
    last_ns: int
    p50_ms: float
    distinct_calls: int


@dataclass(frozen=True, slots=True)
class Gap:
    """A silence of the heartbeats longer than ``GAP_INTERVALS`` intervals."""

    start_ns: int
    end_ns: int  # the next heartbeat, or the report's end when none came

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of ``agentwatch_remediations``."""

    ts_ns: int
    kind: str
    action: str
    anomaly_id: str
    webhook_id: str
    attempts: int
    status_code: int
    ok: bool
    error: str
    latency_ms: float

    @property
    def breaker_state(self) -> str:
        """The breaker state this entry sets ("" when it is not a breaker entry).

        Transitions are logged as kind ``breaker`` with action ``from->to`` (or just ``to``);
        control webhooks as action ``breaker:<state>[:vN]``.
        """
        if self.kind == semconv.CONTROL_TYPE_BREAKER:
            return self.action.rsplit("->", 1)[-1].split(":", 1)[0].strip()
        if self.action.startswith(semconv.CONTROL_TYPE_BREAKER + ":"):
            return self.action.split(":")[1]
        return ""

    @property
    def is_transition(self) -> bool:
        return self.kind == semconv.CONTROL_TYPE_BREAKER

    @property
    def is_rollback(self) -> bool:
        return self.action.startswith(semconv.CONTROL_TYPE_ROLLBACK + ":")


@dataclass(frozen=True, slots=True)
class Recovery:
    """One remediation episode: when it began, when the agent was healthy again, RTO and RPO."""

    kind: str  # breaker or rollback
    anomaly_id: str
    started_ns: int
    recovered_ns: int  # 0 while not recovered in the report's window
    checkpoint_id: str = ""
    rpo_steps: int | None = None

    @property
    def rto_s(self) -> float | None:
        return (self.recovered_ns - self.started_ns) / NS if self.recovered_ns else None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One notable moment; ``kind`` is action, state, checkpoint, heartbeat, onset, anomaly,
    breaker or delivery."""

    ts_ns: int
    kind: str
    text: str


@dataclass
class Report:
    """A post-mortem of one agent over ``[since_ns, until_ns]``; render with ``to_*``."""

    agent: str
    service: str
    since_ns: int
    until_ns: int
    generated_ns: int
    incident: str = ""
    tools: list[ToolSummary] = field(default_factory=list)
    # (bucket start ns, tool, calls): the actions-by-tool chart
    series: list[tuple[int, str, int]] = field(default_factory=list)
    bucket_s: int = 60
    signals: list[tuple[str, int]] = field(default_factory=list)
    heartbeats: list[tuple[int, str, float]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    transitions: list[tuple[int, str, str]] = field(default_factory=list)
    checkpoints: list[tuple[int, str, int]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def deliveries(self) -> list[LogEntry]:
        return [e for e in self.log if not e.is_transition]

    @property
    def breaker_transitions(self) -> list[LogEntry]:
        return [e for e in self.log if e.breaker_state]

    @property
    def rollbacks(self) -> list[LogEntry]:
        return [e for e in self.log if e.is_rollback]

    def to_markdown(self) -> str:
        from ._postmortem_render import to_markdown

        return to_markdown(self)

    def to_html(self) -> str:
        """One self-contained HTML page (inline CSS, charts as base64 PNG data URIs)."""
        from ._postmortem_render import to_html

        return to_html(self)


def heartbeat_gaps(beats: list[tuple[int, str, float]], until_ns: int) -> list[Gap]:
    """Silences longer than ``GAP_INTERVALS`` heartbeat intervals, including a trailing one."""
    gaps = []
    for (t0, _, interval), (t1, _, _) in itertools.pairwise(beats):
        if interval > 0 and t1 - t0 > GAP_INTERVALS * interval * NS:
            gaps.append(Gap(t0, t1))
    if beats:
        last, _, interval = beats[-1]
        if interval > 0 and until_ns - last > GAP_INTERVALS * interval * NS:
            gaps.append(Gap(last, until_ns))
    return gaps


def recoveries(report: Report) -> list[Recovery]:
    """Breaker episodes (opened until closed again) and rollbacks (RPO in checkpoint steps)."""
    out: list[Recovery] = []
    opened: LogEntry | None = None
    for entry in report.breaker_transitions:
        state = entry.breaker_state
        if state in _OPEN_STATES and opened is None:
            opened = entry
        elif state == semconv.BREAKER_CLOSED and opened is not None:
            out.append(Recovery("breaker", opened.anomaly_id, opened.ts_ns, entry.ts_ns))
            opened = None
    if opened is not None:
        out.append(Recovery("breaker", opened.anomaly_id, opened.ts_ns, 0))
    steps = {cid: step for _, cid, step in report.checkpoints}
    seen: set[str] = set()
    for entry in report.rollbacks:
        key = entry.webhook_id or f"{entry.action}@{entry.ts_ns}"
        if key in seen:
            continue
        seen.add(key)
        checkpoint = entry.action.split(":", 1)[1]
        newest = max((s for t, _, s in report.checkpoints if t <= entry.ts_ns), default=None)
        restored = steps.get(checkpoint)
        rpo = max(0, newest - restored) if newest is not None and restored is not None else None
        after = [t for t, s, _ in report.heartbeats if t > entry.ts_ns and s != "paused"]
        recovered = after[0] if entry.ok and after else 0
        out.append(Recovery("rollback", entry.anomaly_id, entry.ts_ns, recovered, checkpoint, rpo))
    return sorted(out, key=lambda r: r.started_ns)


def timeline(report: Report, limit: int = 300) -> list[TimelineEntry]:
    """Everything notable, in time order (actions are summarised by tool, not listed)."""
    out = [
        TimelineEntry(t.first_ns, "action", f"first call of {t.tool} in the window")
        for t in report.tools
    ]
    out += [TimelineEntry(t, "state", f"state {a or '?'} -> {b}") for t, a, b in report.transitions]
    out += [TimelineEntry(t, "checkpoint", f"checkpoint {c} (step {s})")
            for t, c, s in report.checkpoints]  # fmt: skip
    out += [TimelineEntry(g.start_ns, "heartbeat", f"no heartbeat for {g.seconds:.1f} s")
            for g in report.gaps]  # fmt: skip
    for a in report.anomalies:
        out.append(TimelineEntry(a["onset_ns"], "onset", f"onset of {a['detector']} ({a['id']})"))
        out.append(TimelineEntry(a["detected_ns"], "anomaly",
                                 f"{a['severity']} {a['detector']}: {a['summary']}"))  # fmt: skip
    for e in report.log:
        if e.is_transition:
            text = f"breaker {e.action}"
        else:
            result = "ok" if e.ok else f"FAILED ({e.error or e.status_code})"
            text = f"{e.kind} {e.action}: {result} after {e.attempts} attempt(s)"
        out.append(TimelineEntry(e.ts_ns, "breaker" if e.is_transition else "delivery", text))
    out.sort(key=lambda e: (e.ts_ns, e.kind))
    return out[:limit]
