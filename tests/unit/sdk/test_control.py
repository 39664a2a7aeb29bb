from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from agentwatch.sdk import Agent, BreakerState, CircuitOpenError, WebhookVerifier, semconv
from agentwatch.sdk._control import ControlHandler, ControlReceiver

from .conftest import SECRET, AgentFactory, signed_headers

AGENT_ID = "researcher-1"


@pytest.fixture
def agent(make_agent: AgentFactory) -> Agent:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET)
    return agent


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def breaker_body(state: str, *, agent: str = AGENT_ID, **extra: object) -> bytes:
    message = {"type": semconv.CONTROL_TYPE_BREAKER, "agent": agent, "state": state, **extra}
    return json.dumps(message).encode()


def post(
    client: httpx.Client,
    agent: Agent,
    body: bytes,
    *,
    webhook_id: str,
    secret: str = SECRET,
) -> httpx.Response:
    assert agent.control_url is not None
    headers = signed_headers(body, webhook_id=webhook_id, timestamp=int(time.time()), secret=secret)
    return client.post(agent.control_url, content=body, headers=headers)


def test_signed_open_webhook_blocks_the_next_action(agent: Agent, client: httpx.Client) -> None:
    body = breaker_body("open", reason="loop detected", anomaly_id="an_1")
    response = post(client, agent, body, webhook_id="msg_1")
    assert response.status_code == 200
    assert response.json() == {"status": "applied", "state": "open"}
    assert agent.breaker_state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info, agent.action("web_search"):
        pass
    assert (info.value.reason, info.value.anomaly_id) == ("loop detected", "an_1")


def test_listener_is_called_from_a_webhook(agent: Agent, client: httpx.Client) -> None:
    opened = threading.Event()
    agent.add_breaker_listener(
        lambda state, reason, anomaly_id: opened.set() if state is BreakerState.OPEN else None
    )
    assert post(client, agent, breaker_body("open"), webhook_id="msg_1").status_code == 200
    assert opened.is_set()


def test_bad_signature_is_401_and_changes_nothing(agent: Agent, client: httpx.Client) -> None:
    other_secret = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    response = post(client, agent, breaker_body("open"), webhook_id="msg_1", secret=other_secret)
    assert response.status_code == 401
    assert response.json() == {"status": "rejected", "reason": "no matching signature"}
    assert agent.breaker_state is BreakerState.CLOSED


def test_unsigned_request_is_401(agent: Agent, client: httpx.Client) -> None:
    assert agent.control_url is not None
    response = client.post(agent.control_url, content=breaker_body("open"))
    assert response.status_code == 401
    assert agent.breaker_state is BreakerState.CLOSED


def test_duplicate_webhook_id_is_acknowledged_not_reapplied(
    agent: Agent, client: httpx.Client
) -> None:
    open_body = breaker_body("open")
    assert post(client, agent, open_body, webhook_id="msg_open").json()["status"] == "applied"
    assert post(client, agent, breaker_body("closed"), webhook_id="msg_close").status_code == 200
    replay = post(client, agent, open_body, webhook_id="msg_open")
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate"}
    assert agent.breaker_state is BreakerState.CLOSED


def test_webhook_for_another_agent_is_409(agent: Agent, client: httpx.Client) -> None:
    response = post(client, agent, breaker_body("open", agent="someone-else"), webhook_id="m")
    assert response.status_code == 409
    assert agent.breaker_state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (json.dumps({"agent": AGENT_ID}).encode(), "missing or invalid 'type'"),
        (json.dumps({"type": "breaker"}).encode(), "missing or invalid 'agent'"),
        (breaker_body("ajar"), "invalid breaker 'state'"),
        (breaker_body("open", reason=3), "'reason' and 'anomaly_id' must be strings"),
        (
            json.dumps({"type": "reboot", "agent": AGENT_ID}).encode(),
            "unsupported control type",
        ),
        (
            json.dumps({"type": "rollback", "agent": AGENT_ID}).encode(),
            "missing 'checkpoint_id'",
        ),
        (
            json.dumps({"type": "failover", "agent": AGENT_ID, "checkpoint_id": 3}).encode(),
            "'checkpoint_id' and 'failed_agent' must be strings",
        ),
        (
            json.dumps({"type": "failover", "agent": AGENT_ID}).encode(),
            "missing 'failed_agent'",
        ),
    ],
)
def test_malformed_or_unsupported_webhooks_are_400(
    agent: Agent, client: httpx.Client, body: bytes, reason: str
) -> None:
    response = post(client, agent, body, webhook_id="msg_bad")
    assert response.status_code == 400
    assert response.json() == {"status": "rejected", "reason": reason}
    assert agent.breaker_state is BreakerState.CLOSED


def test_oversized_body_is_413(agent: Agent, client: httpx.Client) -> None:
    body = breaker_body("open", padding="x" * (64 * 1024))
    response = post(client, agent, body, webhook_id="msg_big")
    assert response.status_code == 413
    assert agent.breaker_state is BreakerState.CLOSED


def test_other_paths_are_404(agent: Agent, client: httpx.Client) -> None:
    assert agent.control_url is not None
    url = agent.control_url.removesuffix("/control") + "/elsewhere"
    assert client.post(url, content=b"{}").status_code == 404


def test_receiver_handle_without_sockets() -> None:
    applied: list[tuple[BreakerState, str, str]] = []
    now = 1_700_000_000
    handler = ControlHandler(
        agent_id=AGENT_ID,
        verifier=WebhookVerifier(SECRET, clock=lambda: now),
        apply_breaker=lambda *change: applied.append(change),
    )
    receiver = ControlReceiver(handler)
    try:
        body = breaker_body("forced_open", reason="kill switch")
        headers = signed_headers(body, webhook_id="msg_1", timestamp=now)
        assert receiver.handle(headers, body).status_code == 200
        assert receiver.handle(headers, body).body == {"status": "duplicate"}
        stale = signed_headers(body, webhook_id="msg_2", timestamp=now - 301)
        assert receiver.handle(stale, body).status_code == 401
    finally:
        receiver.shutdown()  # never started: only closes the socket
    assert applied == [(BreakerState.FORCED_OPEN, "kill switch", "")]


def test_shutdown_closes_the_receiver(make_agent: AgentFactory, client: httpx.Client) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET)
    url = agent.control_url
    assert url is not None
    agent.shutdown()
    with pytest.raises(httpx.ConnectError):
        client.post(url, content=b"{}")
