"""From an ``otel_traces`` row to what detectors and the agent registry read.

Follows the telemetry contract (DESIGN.md): the agent key is ``service.instance.id``, falling
back to ``gen_ai.agent.id`` and then ``service.name``; spans are classified by
``gen_ai.operation.name`` first (so plain GenAI instrumentation without the agentwatch SDK is
understood) and by agentwatch's span names second; a span naming a GenAI provider under either
the current ``gen_ai.provider.name`` or the deprecated ``gen_ai.system`` is a model call.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from agentwatch.detectors import AgentEvent, EventKind
from agentwatch.sdk import semconv

from ._otlp import STATUS_ERROR
from ._schema import TRACE_COLUMNS

_COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}
_TS, _TRACE, _SPAN = _COL["Timestamp"], _COL["TraceId"], _COL["SpanId"]
_NAME, _SERVICE, _RES = _COL["SpanName"], _COL["ServiceName"], _COL["ResourceAttributes"]
_ATTRS, _STATUS = _COL["SpanAttributes"], _COL["StatusCode"]
_DURATION = _COL["Duration"]
# The number an event carries in ``AgentEvent.value``, by kind (DESIGN.md, telemetry contract).
_VALUE_ATTRIBUTE: Mapping[EventKind, str] = {
    EventKind.GOAL: semconv.GOAL_PROGRESS,
    EventKind.MESSAGE: semconv.MESSAGE_BYTES,
    EventKind.HEARTBEAT: semconv.HEARTBEAT_INTERVAL_S,
}

_BY_SPAN_NAME: Mapping[str, tuple[EventKind, str]] = {
    semconv.SPAN_HEARTBEAT: (EventKind.HEARTBEAT, semconv.AGENT_STATUS),
    semconv.SPAN_DECISION: (EventKind.DECISION, semconv.DECISION_CHOICE),
    semconv.SPAN_STATE_TRANSITION: (EventKind.STATE, semconv.STATE_TO),
    semconv.SPAN_GOAL_PROGRESS: (EventKind.GOAL, semconv.GOAL_ID),
    semconv.SPAN_CHECKPOINT: (EventKind.CHECKPOINT, semconv.CHECKPOINT_ID),
    semconv.SPAN_MESSAGE: (EventKind.MESSAGE, semconv.MESSAGE_PEER),
}
# The GenAI provider, by its current name and by the name it had before semconv 1.37.
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"
_MODEL_OPERATIONS = frozenset(
    {semconv.OP_CHAT, "text_completion", "generate_content", "embeddings", "create_agent"}
)


def _arguments_fingerprint(tool: str, arguments: str) -> str:
    """A fingerprint for spans of plain GenAI instrumentation, which record the call's
    arguments (``gen_ai.tool.call.arguments``) but no agentwatch fingerprint; "" without them."""
    if not arguments:
        return ""
    digest = hashlib.sha256(f"{tool}\0{arguments}".encode(errors="replace")).hexdigest()
    return "args:" + digest[:16]


def agent_key(resource: Mapping[str, str]) -> str:
    """The instance id every per-agent detector and action uses."""
    return (
        resource.get(semconv.SERVICE_INSTANCE_ID)
        or resource.get(semconv.GEN_AI_AGENT_ID)
        or resource.get(semconv.SERVICE_NAME)
        or ""
    )


def _number(text: str | None) -> float:
    """An attribute value (stringified, as the exporter's layout stores it) as a finite float;
    0.0 when absent or not a number."""
    if not text:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def to_event(row: list[Any]) -> AgentEvent:
    """Classify one row; unknown spans become ``EventKind.OTHER``.

    Besides the key, fills ``duration_s`` from the row's ``Duration`` (absent in some replays:
    0.0) and ``value`` with the kind's number: goal progress, message bytes, heartbeat interval.
    A message received (``agentwatch.message.direction = receive``) is ``EventKind.OTHER``: only
    sent messages are the agent's own message volume.
    """
    attributes: Mapping[str, str] = row[_ATTRS]
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME, "")
    key = fingerprint = ""
    if operation == semconv.OP_EXECUTE_TOOL:
        kind = EventKind.ACTION
        key = attributes.get(semconv.GEN_AI_TOOL_NAME, "")
        fingerprint = attributes.get(semconv.ACTION_FINGERPRINT, "") or _arguments_fingerprint(
            key, attributes.get(semconv.GEN_AI_TOOL_CALL_ARGUMENTS, "")
        )
    elif operation == semconv.OP_INVOKE_AGENT:
        kind = EventKind.SESSION
        key = attributes.get(semconv.GEN_AI_CONVERSATION_ID, "")
    elif operation in _MODEL_OPERATIONS:
        kind = EventKind.MODEL
    elif row[_NAME] in _BY_SPAN_NAME:
        kind, key_attribute = _BY_SPAN_NAME[row[_NAME]]
        key = attributes.get(key_attribute, "") if key_attribute else ""
        if kind is EventKind.MESSAGE and (
            attributes.get(semconv.MESSAGE_DIRECTION) == semconv.DIRECTION_RECEIVE
        ):
            # The sender's message volume is the agent's behavior; what it receives is its
            # peers' (a flood would otherwise be raised on its victim as well).
            kind = EventKind.OTHER
    elif attributes.get(GEN_AI_PROVIDER_NAME) or attributes.get(GEN_AI_SYSTEM):
        kind = EventKind.MODEL  # older instrumentations set only the provider
    else:
        kind = EventKind.OTHER
    value_attribute = _VALUE_ATTRIBUTE.get(kind)
    value = _number(attributes.get(value_attribute)) if value_attribute else 0.0
    duration = row[_DURATION] if len(row) > _DURATION else None
    return AgentEvent(
        agent=agent_key(row[_RES]),
        service=row[_SERVICE],
        kind=kind,
        ts_ns=row[_TS],
        key=key,
        fingerprint=fingerprint,
        error=row[_STATUS] == STATUS_ERROR,
        trace_id=row[_TRACE],
        span_id=row[_SPAN],
        duration_s=int(duration) / 1e9 if duration else 0.0,
        value=value,
    )


def heartbeat_fields(row: list[Any]) -> tuple[str, float]:
    """(control URL, interval in seconds) of a heartbeat row; ("", 0.0) when absent."""
    attributes = row[_ATTRS]
    try:
        interval = float(attributes.get(semconv.HEARTBEAT_INTERVAL_S, 0) or 0)
    except ValueError:
        interval = 0.0
    return str(attributes.get(semconv.CONTROL_URL, "")), interval
