"""The values that flow through detection: events in, anomalies out."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any, Protocol


class EventKind(enum.StrEnum):
    """What an agent did, as the collector's normalizer classifies a span."""

    ACTION = "action"
    DECISION = "decision"
    STATE = "state"
    GOAL = "goal"
    HEARTBEAT = "heartbeat"
    CHECKPOINT = "checkpoint"
    MESSAGE = "message"
    SESSION = "session"
    MODEL = "model"
    OTHER = "other"


class Severity(enum.StrEnum):
    """Alert severity, ordered: ``Severity.rank`` compares them."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One normalized span, reduced to what detectors read.

    Attributes:
        agent: The agent instance id (``service.instance.id`` or its fallbacks).
        service: The agent's cohort (``service.name``).
        kind: What the span was.
        ts_ns: Event time: the span's start, in ns since the Unix epoch.
        key: The action key: tool name, decision choice, target state, goal id, message peer,
            or a heartbeat's agent status (``running``, ``idle``, ``paused``); "" when none.
        fingerprint: The action fingerprint (tool plus normalized arguments); "" when none.
        error: True when the span's status is ERROR.
        trace_id: Hex trace id of the span, for evidence.
        span_id: Hex span id of the span, for evidence.
        duration_s: The span's duration in seconds (a decision's is its latency); 0.0 unknown.
        value: The span's number, by kind: a goal's progress (0..1), a message's bytes, a
            heartbeat's interval in seconds; 0.0 otherwise.
    """

    agent: str
    service: str
    kind: EventKind
    ts_ns: int
    key: str = ""
    fingerprint: str = ""
    error: bool = False
    trace_id: str = ""
    span_id: str = ""
    duration_s: float = 0.0
    value: float = 0.0

    def __reduce__(self) -> tuple[type[AgentEvent], tuple[Any, ...]]:
        return _reduced(self)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A detector's finding about one agent.

    Attributes:
        id: Unique id (32 hex chars).
        agent: The agent instance id.
        service: The agent's cohort.
        detector: The detector's name (``loop``, ``action_rate``, ...).
        score: The score that crossed the threshold (finite; higher is more anomalous).
        threshold: The threshold it crossed.
        severity: How bad it is; remediation policies key on it.
        onset_ns: Estimated onset (event time, ns); rollback picks a checkpoint before it.
        detected_ns: When the service detected it (wall clock, ns).
        evidence: What was seen and what was expected; always has a ``summary`` string.
        trace_id: Trace id of the triggering span.
        span_id: Span id of the triggering span.
    """

    id: str
    agent: str
    service: str
    detector: str
    score: float
    threshold: float
    severity: Severity
    onset_ns: int
    detected_ns: int
    evidence: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""

    def __reduce__(self) -> tuple[type[Anomaly], tuple[Any, ...]]:
        return _reduced(self)

    @property
    def summary(self) -> str:
        return str(self.evidence.get("summary", f"{self.detector} anomaly on {self.agent}"))


def _reduced(value: Any) -> tuple[Any, tuple[Any, ...]]:
    """Pickles a frozen dataclass through its constructor: compiled (setup.py), unpickling could
    not set its fields one by one."""
    return type(value), tuple(getattr(value, f.name) for f in fields(value))


class Detector(Protocol):
    """River's verbs: score before learning; ``score_one`` never mutates state."""

    def learn_one(self, x: dict[str, Any]) -> None: ...

    def score_one(self, x: dict[str, Any]) -> float: ...
