"""The normalizer fills AgentEvent's duration and per-kind value from the span row."""

from __future__ import annotations

import pytest

from agentwatch.collector._normalize import to_event
from agentwatch.collector._schema import TRACE_COLUMNS
from agentwatch.detectors import EventKind
from agentwatch.sdk import semconv

_COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}


def _row(name: str, attributes: dict[str, str], duration_ns: object = 0) -> list[object]:
    row: list[object] = [""] * len(TRACE_COLUMNS)
    row[_COL["Timestamp"]] = 1
    row[_COL["ResourceAttributes"]] = {semconv.SERVICE_INSTANCE_ID: "a1"}
    row[_COL["ServiceName"]] = "svc"
    row[_COL["SpanAttributes"]] = attributes
    row[_COL["SpanName"]] = name
    row[_COL["Duration"]] = duration_ns
    return row


def test_a_decision_carries_its_latency() -> None:
    event = to_event(
        _row(semconv.SPAN_DECISION, {semconv.DECISION_CHOICE: "web_search"}, 250_000_000)
    )
    assert (event.kind, event.key, event.duration_s) == (EventKind.DECISION, "web_search", 0.25)


def test_goal_progress_message_bytes_and_heartbeat_interval_and_status() -> None:
    goal = to_event(
        _row(semconv.SPAN_GOAL_PROGRESS, {semconv.GOAL_ID: "g1", semconv.GOAL_PROGRESS: "0.4"})
    )
    assert (goal.kind, goal.key, goal.value) == (EventKind.GOAL, "g1", 0.4)
    message = to_event(_row(semconv.SPAN_MESSAGE, {semconv.MESSAGE_BYTES: "1200"}))
    assert (message.kind, message.value) == (EventKind.MESSAGE, 1200.0)
    beat = to_event(
        _row(
            semconv.SPAN_HEARTBEAT,
            {semconv.HEARTBEAT_INTERVAL_S: "5.0", semconv.AGENT_STATUS: semconv.STATUS_IDLE},
        )
    )
    assert (beat.kind, beat.key, beat.value) == (EventKind.HEARTBEAT, "idle", 5.0)


@pytest.mark.parametrize("bad", ["", "nan", "inf", "x"])
def test_bad_numbers_become_zero(bad: str) -> None:
    goal = to_event(_row(semconv.SPAN_GOAL_PROGRESS, {semconv.GOAL_PROGRESS: bad}))
    assert goal.value == 0.0


@pytest.mark.parametrize("duration", [None, 0])
def test_a_replay_without_durations_gives_zero(duration: object) -> None:
    assert to_event(_row(semconv.SPAN_DECISION, {}, duration)).duration_s == 0.0


@pytest.mark.parametrize(
    ("direction", "kind"),
    [
        (semconv.DIRECTION_SEND, EventKind.MESSAGE),
        ("", EventKind.MESSAGE),  # no direction: counted, as before the attribute
        (semconv.DIRECTION_RECEIVE, EventKind.OTHER),
    ],
)
def test_only_sent_messages_are_the_agents_message_volume(direction: str, kind: EventKind) -> None:
    attributes = {semconv.MESSAGE_PEER: "b2", semconv.MESSAGE_BYTES: "300"}
    if direction:
        attributes[semconv.MESSAGE_DIRECTION] = direction
    assert to_event(_row(semconv.SPAN_MESSAGE, attributes)).kind is kind
