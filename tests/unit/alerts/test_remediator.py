"""Remediator end to end: loopback control and Slack receivers, virtual time, force_flush."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from agentwatch.alerts import (
    ControlCommand,
    ControlWebhookClient,
    Delivery,
    Dispatcher,
    RemediationPolicy,
    Remediator,
    SlackReceiver,
)
from agentwatch.sdk.semconv import BREAKER_CLOSED, BREAKER_OPEN

from .conftest import FakeAnomaly, FakeClock, LoopbackReceiver
from .test_signing import SPEC_SECRET, verify

WAIT_S = 5.0


@dataclass
class Harness:
    remediator: Remediator
    dispatcher: Dispatcher
    deliveries: list[Delivery] = field(default_factory=list)

    def flush(self) -> None:
        assert self.dispatcher.force_flush(WAIT_S)


@pytest.fixture
def harness(clock: FakeClock, slack_server: LoopbackReceiver) -> Iterator[Harness]:
    control = ControlWebhookClient(
        SPEC_SECRET, sleep=clock.sleep, clock=clock.time, rng=random.Random(1)
    )
    slack = SlackReceiver(slack_server.url, sleep=clock.sleep, clock=clock.time)
    dispatcher = Dispatcher()
    deliveries: list[Delivery] = []
    remediator = Remediator(
        RemediationPolicy(),
        control,
        slack=slack,
        dispatcher=dispatcher,
        on_delivery=deliveries.append,
        clock=clock.time_ns,
    )
    yield Harness(remediator, dispatcher, deliveries)
    remediator.shutdown(timeout_s=WAIT_S)
    control.close()
    slack.close()


def test_critical_opens_the_breaker_once_and_notifies_every_time(
    harness: Harness, receiver: LoopbackReceiver, slack_server: LoopbackReceiver
) -> None:
    first = FakeAnomaly(id="1" * 32)
    commands = harness.remediator.handle(first, receiver.url)
    harness.flush()

    assert [(c.type, c.agent, c.state) for c in commands] == [("breaker", "agent-1", "open")]
    assert harness.remediator.breaker_state("agent-1") == BREAKER_OPEN
    [request] = receiver.requests
    assert verify(SPEC_SECRET, request.headers, request.body)
    payload = request.json()
    assert (payload["type"], payload["agent"], payload["state"]) == ("breaker", "agent-1", "open")
    assert payload["anomaly_id"] == first.id
    assert len(slack_server.requests) == 1
    assert "CRITICAL: loop on agent-1" in slack_server.requests[0].json()["text"]
    assert sorted((d.target, d.ok) for d in harness.deliveries) == [
        ("control", True),
        ("slack", True),
    ]

    assert harness.remediator.handle(FakeAnomaly(id="2" * 32), receiver.url) == []
    harness.flush()
    assert len(receiver.requests) == 1  # the breaker is already open: not sent again
    assert len(slack_server.requests) == 2


def test_warning_notifies_only(
    harness: Harness, receiver: LoopbackReceiver, slack_server: LoopbackReceiver
) -> None:
    assert harness.remediator.handle(FakeAnomaly(severity="warning"), receiver.url) == []
    harness.flush()
    assert receiver.requests == []
    assert len(slack_server.requests) == 1
    assert harness.remediator.breaker_state("agent-1") == BREAKER_CLOSED


def test_breakers_are_per_agent(harness: Harness, receiver: LoopbackReceiver) -> None:
    harness.remediator.handle(FakeAnomaly(agent="a"), receiver.url)
    harness.remediator.handle(FakeAnomaly(agent="b"), receiver.url)
    harness.flush()
    assert sorted(r.json()["agent"] for r in receiver.requests) == ["a", "b"]


def test_no_control_url_is_reported_then_sent_once_known(
    harness: Harness, receiver: LoopbackReceiver, slack_server: LoopbackReceiver
) -> None:
    commands = harness.remediator.handle(FakeAnomaly(), None)
    harness.flush()
    assert len(commands) == 1
    assert harness.remediator.breaker_state("agent-1") == BREAKER_OPEN
    failures = [d for d in harness.deliveries if d.target == "control"]
    assert [(d.ok, d.attempts, d.error) for d in failures] == [
        (False, 0, "agent has no control URL yet")
    ]
    assert len(slack_server.requests) == 1

    # The next anomaly, once the agent has announced a URL, pushes the open state; then no more.
    assert len(harness.remediator.handle(FakeAnomaly(), receiver.url)) == 1
    assert harness.remediator.handle(FakeAnomaly(), receiver.url) == []
    harness.flush()
    assert len(receiver.requests) == 1


def test_failed_control_delivery_is_reported(harness: Harness, receiver: LoopbackReceiver) -> None:
    receiver.respond((401, {}))
    harness.remediator.handle(FakeAnomaly(), receiver.url)
    harness.flush()
    [control] = [d for d in harness.deliveries if d.target == "control"]
    assert (control.ok, control.status_code) == (False, 401)


class RecordingSender:
    """A fake ControlSender that records and can block."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ControlCommand]] = []
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def send(self, url: str, command: ControlCommand, /) -> Delivery:
        self.release.wait(WAIT_S)
        with self._lock:
            self.sent.append((url, command))
        return Delivery("control", "msg_x", 1, 200, True, "", 0, 0)


def test_concurrent_anomalies_open_one_breaker() -> None:
    sender = RecordingSender()
    dispatcher = Dispatcher()
    remediator = Remediator(RemediationPolicy(), sender, dispatcher=dispatcher)
    barrier = threading.Barrier(8)

    def fire() -> None:
        barrier.wait(WAIT_S)
        for _ in range(50):
            remediator.handle(FakeAnomaly(), "http://agent.test/control")

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert dispatcher.force_flush(WAIT_S)
    remediator.shutdown()
    assert len(sender.sent) == 1


def test_full_queue_is_counted_as_a_drop() -> None:
    sender = RecordingSender()
    sender.release.clear()
    dispatcher = Dispatcher(workers=1, max_queue=1)
    deliveries: list[Delivery] = []
    remediator = Remediator(
        RemediationPolicy(), sender, dispatcher=dispatcher, on_delivery=deliveries.append
    )
    for agent in ("a", "b", "c"):  # one runs (blocked), one queues, one is dropped
        remediator.handle(FakeAnomaly(agent=agent), "http://agent.test/control")
    assert remediator.dropped_total >= 1
    assert any(d.error == "control queue full" for d in deliveries)
    sender.release.set()
    remediator.shutdown(timeout_s=WAIT_S)


def test_on_delivery_errors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    def broken(d: Delivery) -> None:
        raise RuntimeError("observer bug")

    dispatcher = Dispatcher()
    remediator = Remediator(
        RemediationPolicy(), RecordingSender(), dispatcher=dispatcher, on_delivery=broken
    )
    remediator.handle(FakeAnomaly(), None)  # reported on the caller's thread
    remediator.handle(FakeAnomaly(agent="b"), "http://agent.test/control")
    assert dispatcher.force_flush(WAIT_S)
    remediator.shutdown()
    assert caplog.text.count("on_delivery callback failed") == 2


def test_real_detector_anomaly_is_accepted(harness: Harness, receiver: LoopbackReceiver) -> None:
    types = pytest.importorskip("agentwatch.detectors._types")
    anomaly = types.Anomaly(
        id="c" * 32,
        agent="agent-7",
        service="coder",
        detector="loop",
        score=5.0,
        threshold=3.0,
        severity=types.Severity.CRITICAL,
        onset_ns=1,
        detected_ns=2,
        evidence={"summary": "loop x3"},
    )
    [command] = harness.remediator.handle(anomaly, receiver.url)
    harness.flush()
    assert command.reason == "loop x3"
    assert receiver.requests[0].json()["agent"] == "agent-7"


def test_every_delivery_names_its_agent_action_and_anomaly(
    harness: Harness, receiver: LoopbackReceiver
) -> None:
    anomaly = FakeAnomaly(id="2" * 32)
    harness.remediator.handle(anomaly, receiver.url)
    harness.remediator.handle(FakeAnomaly(id="3" * 32, agent="agent-2"), None)
    harness.flush()
    tags = sorted((d.target, d.agent, d.action, d.anomaly_id, d.ok) for d in harness.deliveries)
    assert tags == [
        ("control", "agent-1", "breaker:open", "2" * 32, True),
        ("control", "agent-2", "breaker:open", "3" * 32, False),  # no control URL yet
        ("slack", "agent-1", "notify", "2" * 32, True),
        ("slack", "agent-2", "notify", "3" * 32, True),
    ]
