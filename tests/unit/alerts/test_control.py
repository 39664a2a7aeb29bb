"""Control webhooks to a real loopback receiver, on virtual time."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentwatch.alerts import ControlCommand, ControlWebhookClient, RetryPolicy
from agentwatch.sdk.semconv import BREAKER_OPEN, CONTROL_TYPE_BREAKER, CONTROL_TYPE_ROLLBACK

from .conftest import FakeClock, LoopbackReceiver
from .test_signing import SPEC_SECRET, verify

COMMAND = ControlCommand(
    type=CONTROL_TYPE_BREAKER,
    agent="agent-1",
    state=BREAKER_OPEN,
    reason="same tool call x5",
    anomaly_id="a" * 32,
    issued_ns=1_700_000_000_123_456_789,
)


@pytest.fixture
def control(clock: FakeClock) -> Iterator[ControlWebhookClient]:
    client = ControlWebhookClient(
        SPEC_SECRET, sleep=clock.sleep, clock=clock.time, rng=random.Random(3)
    )
    yield client
    client.close()


def test_payload() -> None:
    assert COMMAND.to_payload() == {
        "type": "breaker",
        "agent": "agent-1",
        "state": "open",
        "reason": "same tool call x5",
        "anomaly_id": "a" * 32,
        "issued_at": "2023-11-14T22:13:20.123Z",
    }
    rollback = ControlCommand(type=CONTROL_TYPE_ROLLBACK, agent="a", checkpoint_id="ck-7")
    assert rollback.to_payload()["checkpoint_id"] == "ck-7"
    assert "state" not in rollback.to_payload()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"type": "reboot", "agent": "a"}, "type"),
        ({"type": "breaker", "agent": ""}, "agent"),
        ({"type": "breaker", "agent": "a", "state": "ajar"}, "state"),
    ],
)
def test_command_validates(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ControlCommand(**kwargs)


def test_bad_secret_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="secret"):
        ControlWebhookClient("whsec_%%%")


def test_repr_hides_the_secret(control: ControlWebhookClient) -> None:
    assert SPEC_SECRET.removeprefix("whsec_") not in repr(control)


def test_retries_503_with_the_same_webhook_id(
    control: ControlWebhookClient, receiver: LoopbackReceiver, clock: FakeClock
) -> None:
    receiver.respond((503, {}), (503, {}))
    result = control.send(receiver.url, COMMAND)

    assert (result.ok, result.attempts, result.status_code, result.error) == (True, 3, 200, "")
    assert result.target == "control"
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {result.webhook_id}
    for request in receiver.requests:
        assert verify(SPEC_SECRET, request.headers, request.body)
        assert request.json() == COMMAND.to_payload()
        assert request.headers["content-type"] == "application/json"
    assert len(clock.sleeps) == 2
    assert 0.5 * 0.8 <= clock.sleeps[0] <= 0.5 * 1.2
    assert 0.75 * 0.8 <= clock.sleeps[1] <= 0.75 * 1.2
    # The timestamp is re-made per attempt and follows the (virtual) clock.
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps)


def test_400_is_not_retried(
    control: ControlWebhookClient, receiver: LoopbackReceiver, clock: FakeClock
) -> None:
    receiver.respond((400, {}))
    result = control.send(receiver.url, COMMAND)
    assert (result.ok, result.attempts, result.status_code) == (False, 1, 400)
    assert clock.sleeps == []


def test_429_retry_after_is_honored(
    control: ControlWebhookClient, receiver: LoopbackReceiver, clock: FakeClock
) -> None:
    receiver.respond((429, {"Retry-After": "7"}))
    result = control.send(receiver.url, COMMAND)
    assert (result.ok, result.attempts) == (True, 2)
    assert clock.sleeps == [7.0]


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_connection_refused_is_retried_until_the_deadline(
    control: ControlWebhookClient, clock: FakeClock
) -> None:
    url = _refused_url()
    result = control.send(url, COMMAND)
    assert not result.ok
    assert result.status_code is None
    assert result.attempts > 5
    assert "ConnectError" in result.error and "deadline" in result.error
    assert url not in result.error
    assert sum(clock.sleeps) <= control.policy.deadline_s
    assert (result.finished_ns - result.started_ns) / 1e9 <= control.policy.deadline_s


def test_shutdown_stops_retries_with_the_default_sleep(receiver: LoopbackReceiver) -> None:
    # The default sleep waits on the shutdown event, so a shut-down client never waits.
    control = ControlWebhookClient(SPEC_SECRET, policy=RetryPolicy(initial_backoff_s=3600))
    receiver.respond((503, {}), (503, {}))
    control.shutdown()
    result = control.send(receiver.url, COMMAND)
    control.close()
    assert (result.ok, result.attempts, result.status_code) == (False, 1, 503)
    assert "shutting down" in result.error


def test_shutdown_during_backoff(receiver: LoopbackReceiver, clock: FakeClock) -> None:
    control: ControlWebhookClient

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        control.shutdown()

    control = ControlWebhookClient(SPEC_SECRET, sleep=sleep, clock=clock.time)
    receiver.respond((503, {}), (503, {}))
    result = control.send(receiver.url, COMMAND)
    control.close()
    assert (result.ok, result.attempts) == (False, 1)
    assert len(receiver.requests) == 1


def test_injected_client_is_not_closed(receiver: LoopbackReceiver) -> None:
    with httpx.Client() as http:
        control = ControlWebhookClient(SPEC_SECRET, client=http)
        control.close()
        assert not http.is_closed
        assert http.post(receiver.url, content=b"{}").status_code == 200
