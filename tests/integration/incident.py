"""A realistic half hour of a small fleet, with one incident, for post-mortem tests.

Twelve agents in three cohorts (``research-agent``, ``support-agent``, ``coding-agent``) act,
decide, message each other, checkpoint and heartbeat for 30 minutes ending a minute ago. Along
the way: ``support-agent`` deploys version 1.1 and starts calling new tools; two coding agents
lose their heartbeats together; ``research-agent-07`` loops and floods, is detected, its breaker
opens (signed webhook delivered, Slack failed), it is rolled back and its breaker closes again.

Spans go through OTLP protobuf requests, ``request_to_rows`` and ``Storage.insert`` (the
service's own path); anomalies and the remediation log are inserted as the service logs them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from opentelemetry.semconv.attributes.service_attributes import SERVICE_VERSION

from agentwatch.collector import RunningService, ServiceSettings, Storage, request_to_rows
from agentwatch.collector._records import ANOMALY_COLUMNS, REMEDIATION_COLUMNS
from agentwatch.collector._schema import ANOMALIES_TABLE, REMEDIATIONS_TABLE, TRACE_COLUMNS
from agentwatch.collector._service import Service
from agentwatch.sdk import semconv

NS = 1_000_000_000
RUNAWAY = "research-agent-07"
LOST = ("coding-agent-03", "coding-agent-06")
COHORT_DEPLOYED = "support-agent"
TOOLS = {
    "research-agent": ["web_search", "fetch_page", "summarize", "write_note"],
    "support-agent": ["lookup_customer", "search_kb", "draft_reply", "send_reply"],
    "coding-agent": ["read_file", "grep_repo", "edit_file", "run_tests"],
}
NEW_SUPPORT_TOOLS = ["issue_refund", "bulk_refund"]


@dataclass
class Incident:
    """What was generated, and when (ns)."""

    start_ns: int
    end_ns: int
    deploy_ns: int
    lost_ns: int
    loop_ns: int
    detected_ns: int
    opened_ns: int
    closed_ns: int
    anomaly_ids: list[str] = field(default_factory=list)
    spans: int = 0


class _Batch:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.request = ExportTraceServiceRequest()
        self.count = 0

    def spans(self, cohort: str, agent: str, version: str) -> Any:
        rs = self.request.resource_spans.add()
        for key, value in (
            (semconv.SERVICE_NAME, cohort),
            (semconv.SERVICE_INSTANCE_ID, agent),
            (SERVICE_VERSION, version),
        ):
            rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        return rs.scope_spans.add().spans

    def add(
        self, spans: Any, name: str, ts: int, duration_ns: int, error: str = "", **attrs: Any
    ) -> None:
        self.count += 1
        span = spans.add(
            trace_id=self.rng.randbytes(16),
            span_id=self.rng.randbytes(8),
            name=name,
            start_time_unix_nano=ts,
            end_time_unix_nano=ts + duration_ns,
        )
        for key, value in attrs.items():
            any_value = (
                AnyValue(int_value=value) if isinstance(value, int) else
                AnyValue(double_value=value) if isinstance(value, float) else
                AnyValue(string_value=str(value))
            )  # fmt: skip
            span.attributes.add(key=key, value=any_value)
        if error:
            span.status.code = Status.STATUS_CODE_ERROR
            span.attributes.add(key=semconv.ERROR_TYPE, value=AnyValue(string_value=error))


def _action(batch: _Batch, spans: Any, ts: int, tool: str, fingerprint: str, error: str) -> None:
    batch.add(
        spans,
        f"{semconv.SPAN_EXECUTE_TOOL_PREFIX} {tool}",
        ts,
        batch.rng.randrange(5, 400) * 1_000_000,
        error,
        **{
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: tool,
            semconv.ACTION_FINGERPRINT: fingerprint,
            semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        },
    )


def populate(storage: Storage, *, seed: int = 11, now_ns: int | None = None) -> Incident:
    """Insert the half hour into ``storage`` (migrated); returns what happened when."""
    rng = random.Random(seed)
    now = now_ns or time.time_ns()
    end = now - 60 * NS
    start = end - 30 * 60 * NS
    at = lambda minutes: start + int(minutes * 60 * NS)  # noqa: E731 - a local shorthand
    inc = Incident(start, end, at(19), at(22), at(25), at(25.2), at(25.2) + 5_000_000,
                   at(28))  # fmt: skip
    agents = [(cohort, f"{cohort}-{i:02d}") for i, cohort in
              ((i, sorted(TOOLS)[i % 3]) for i in range(12))]  # fmt: skip
    rows: list[list[Any]] = []
    for cohort, agent in agents:
        batch = _Batch(rng)
        old = batch.spans(cohort, agent, "1.0")
        new = batch.spans(cohort, agent, "1.1") if cohort == COHORT_DEPLOYED else old
        stop = inc.lost_ns if agent in LOST else end
        if agent == RUNAWAY:
            stop = inc.opened_ns
        t, step = start + rng.randrange(NS), 0
        while t < stop:  # an action every ~6 s, a decision before each
            deployed = cohort == COHORT_DEPLOYED and t >= inc.deploy_ns
            spans = new if deployed else old
            tools = TOOLS[cohort] + (NEW_SUPPORT_TOOLS if deployed else [])
            tool = rng.choice(tools)
            batch.add(spans, semconv.SPAN_DECISION, t, rng.randrange(20, 900) * 1_000_000,
                      **{semconv.DECISION_CHOICE: tool, semconv.DECISION_OPTIONS: len(tools),
                         semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR})  # fmt: skip
            error = (
                "TimeoutError" if tool in ("fetch_page", "run_tests") and rng.random() < 0.2 else ""
            )
            _action(batch, spans, t + NS // 2, tool, f"{rng.getrandbits(64):016x}", error)
            if rng.random() < 0.15:  # a message to a peer of the same cohort
                peer = rng.choice([a for c, a in agents if c == cohort and a != agent])
                batch.add(spans, semconv.SPAN_MESSAGE, t + NS, 1_000_000,
                          **{semconv.MESSAGE_PEER: peer,
                             semconv.MESSAGE_DIRECTION: semconv.DIRECTION_SEND,
                             semconv.MESSAGE_BYTES: rng.randrange(200, 9000)})  # fmt: skip
            step += 1
            if step % 20 == 0:
                batch.add(spans, semconv.SPAN_CHECKPOINT, t + NS, 1_000_000,
                          **{semconv.CHECKPOINT_ID: f"{agent}-ckpt-{step}",
                             semconv.CHECKPOINT_STEP: step})  # fmt: skip
            if step % 30 == 1:
                state = ("planning", "acting") if step % 60 == 1 else ("acting", "reviewing")
                batch.add(spans, semconv.SPAN_STATE_TRANSITION, t, 1_000_000,
                          **{semconv.STATE_FROM: state[0], semconv.STATE_TO: state[1]})  # fmt: skip
            t += rng.randrange(4, 8) * NS
        beat = start + rng.randrange(NS)
        seq = 0
        while beat < (inc.lost_ns if agent in LOST else end):
            seq += 1
            deployed = cohort == COHORT_DEPLOYED and beat >= inc.deploy_ns
            batch.add(new if deployed else old, semconv.SPAN_HEARTBEAT, beat, 100_000,
                      **{semconv.HEARTBEAT_SEQ: seq, semconv.HEARTBEAT_INTERVAL_S: 10.0,
                         semconv.AGENT_STATUS: (semconv.STATUS_PAUSED if agent == RUNAWAY and
                                                inc.opened_ns <= beat < inc.closed_ns
                                                else semconv.STATUS_RUNNING),
                         semconv.SIGNAL: semconv.SIGNAL_HEALTH})  # fmt: skip
            beat += 10 * NS
        if agent == RUNAWAY:
            for i in range(6):  # the loop: one call, six times
                _action(batch, old, inc.loop_ns + i * NS // 10, "web_search", "f" * 16, "")
            for i in range(60):  # then a flood
                _action(batch, old, inc.loop_ns + NS + i * NS // 50, "http_request",
                        f"{i:016x}", "")  # fmt: skip
        inc.spans += batch.count
        rows += request_to_rows(batch.request).rows
    storage.insert("otel_traces", rows, TRACE_COLUMNS)
    _incident_log(storage, inc)
    return inc


def _incident_log(storage: Storage, inc: Incident) -> None:
    loop_id, rate_id = "anom-loop-0001", "anom-rate-0002"
    inc.anomaly_ids = [loop_id, rate_id]
    evidence_loop = {"summary": f"agent {RUNAWAY} called web_search with identical arguments "
                     "3 times in a row", "fingerprint": "f" * 16, "tool": "web_search",
                     "repeats": 3, "expected": "no identical consecutive calls"}  # fmt: skip
    evidence_rate = {"summary": f"agent {RUNAWAY}: 48 actions in the current 1 s window, "
                     "baseline 0.2 ± 0.4", "observed": 48, "expected_mean": 0.2,
                     "expected_std": 0.4, "window_s": 1.0}  # fmt: skip
    lost_id = "anom-lost-0003"
    storage.insert(
        ANOMALIES_TABLE,
        [
            [
                loop_id,
                RUNAWAY,
                "research-agent",
                "loop",
                3.0,
                3.0,
                "warning",
                inc.loop_ns,
                inc.loop_ns + NS // 5,
                evidence_loop["summary"],
                json.dumps(evidence_loop),
                "",
                "",
            ],
            [
                rate_id,
                RUNAWAY,
                "research-agent",
                "action_rate",
                41.3,
                6.0,
                "critical",
                inc.loop_ns + NS,
                inc.detected_ns,
                evidence_rate["summary"],
                json.dumps(evidence_rate),
                "",
                "",
            ],
            *(
                [
                    lost_id + agent[-2:],
                    agent,
                    "coding-agent",
                    "liveness",
                    3.0,
                    3.0,
                    "critical",
                    inc.lost_ns,
                    inc.lost_ns + 30 * NS,
                    f"agent {agent} missed 3 heartbeats",
                    json.dumps({"summary": "missed heartbeats", "expected_interval_s": 10.0}),
                    "",
                    "",
                ]
                for agent in LOST
            ),
        ],
        ANOMALY_COLUMNS,
    )
    t = inc.opened_ns
    ms = 1_000_000
    storage.insert(
        REMEDIATIONS_TABLE,
        [
            [t, RUNAWAY, "breaker", "closed->open", rate_id, "", 0, -1, True, "", 0.0],
            [
                t + 40 * ms,
                RUNAWAY,
                "control",
                "breaker:open",
                rate_id,
                "msg_open1",
                1,
                200,
                True,
                "",
                38.5,
            ],
            [
                t + 90 * ms,
                RUNAWAY,
                "control",
                f"rollback:{RUNAWAY}-ckpt-200",
                rate_id,
                "msg_rb1",
                1,
                200,
                True,
                "",
                41.0,
            ],
            [
                t + 300 * ms,
                RUNAWAY,
                "slack",
                "notify",
                rate_id,
                "msg_sl1",
                4,
                500,
                False,
                "HTTP 500 from Slack after 4 attempts",
                2900.0,
            ],
            [inc.closed_ns, RUNAWAY, "breaker", "open->closed", "", "", 0, -1, True, "", 0.0],
            *(
                [
                    inc.lost_ns + 31 * NS,
                    agent,
                    "control",
                    "failover:" + agent,
                    "",
                    "",
                    3,
                    -1,
                    False,
                    "connection refused",
                    5000.0,
                ]
                for agent in LOST
            ),
        ],
        REMEDIATION_COLUMNS,
    )


@contextmanager
def serve(settings: ServiceSettings) -> Iterator[tuple[Service, str, str]]:
    """A running service: (service, API URL, OTLP URL)."""
    with RunningService(settings) as running:
        yield running.service, running.api_url, running.otlp_endpoint


def data_dir_with_incident(path: Path) -> Incident:
    """A data directory holding the half hour (closed again, for ``--data-dir`` readers)."""
    from agentwatch.collector import embedded_dsn

    storage = Storage(embedded_dsn(path))
    try:
        storage.migrate()
        return populate(storage)
    finally:
        storage.close()
