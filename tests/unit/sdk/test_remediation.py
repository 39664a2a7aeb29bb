"""Rollback and failover webhooks, pause mode, key rotation, and the ASGI receiver."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from agentwatch.sdk import Agent, AgentwatchError, BreakerState, CircuitOpenError, semconv

from .conftest import SECRET, AgentFactory, signed_headers

AGENT_ID = "researcher-1"
NEW_SECRET = "whsec_" + base64.b64encode(b"the-next-key-after-rotation!").decode()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def body_of(**message: object) -> bytes:
    return json.dumps({"agent": AGENT_ID, **message}).encode()


def post(
    client: httpx.Client, agent: Agent, body: bytes, webhook_id: str, secret: str = SECRET
) -> httpx.Response:
    assert agent.control_url is not None
    headers = signed_headers(body, webhook_id=webhook_id, timestamp=int(time.time()), secret=secret)
    return client.post(agent.control_url, content=body, headers=headers)


def test_rollback_runs_once_per_webhook_id_even_when_retried(
    make_agent: AgentFactory, client: httpx.Client
) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET)
    restored: list[str] = []
    agent.on_rollback(restored.append)
    body = body_of(type="rollback", checkpoint_id="ckpt-7", reason="loop", anomaly_id="an_1")
    first = post(client, agent, body, "msg_rb")
    assert first.status_code == 202
    assert first.json() == {"status": "accepted", "type": "rollback"}
    for _ in range(3):  # the service's retries of the same delivery
        retry = post(client, agent, body, "msg_rb")
        assert (retry.status_code, retry.json()) == (200, {"status": "duplicate"})
    assert agent.join_remediations(10)
    assert restored == ["ckpt-7"]
    # A new rollback (new webhook-id) runs again.
    assert post(client, agent, body, "msg_rb_2").status_code == 202
    assert agent.join_remediations(10)
    assert restored == ["ckpt-7", "ckpt-7"]


def test_rollback_without_a_handler_is_501_and_can_be_retried(
    make_agent: AgentFactory, client: httpx.Client
) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET)
    body = body_of(type="rollback", checkpoint_id="ckpt-1")
    response = post(client, agent, body, "msg_1")
    assert response.status_code == 501
    restored: list[str] = []
    agent.on_rollback(restored.append)
    assert post(client, agent, body, "msg_1").status_code == 202
    assert agent.join_remediations(10)
    assert restored == ["ckpt-1"]


def test_failing_and_async_rollback_handlers(
    make_agent: AgentFactory, client: httpx.Client
) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET)
    seen: list[str] = []

    @agent.on_rollback
    def broken(checkpoint_id: str) -> None:
        raise RuntimeError("restore failed")

    @agent.on_rollback
    async def resume(checkpoint_id: str) -> None:
        await asyncio.sleep(0)
        seen.append(checkpoint_id)

    assert post(client, agent, body_of(type="rollback", checkpoint_id="c9"), "m").status_code == 202
    assert agent.join_remediations(10)
    assert seen == ["c9"]  # a failing handler does not stop the next one


def test_failover_reaches_the_standby_handler(
    make_agent: AgentFactory, client: httpx.Client
) -> None:
    standby, _ = make_agent(instance_id="standby-1", webhook_secret=SECRET)
    taken_over: list[tuple[str, str]] = []

    @standby.on_failover
    def take_over(failed_agent: str, checkpoint_id: str) -> None:
        taken_over.append((failed_agent, checkpoint_id))

    message = {
        "type": "failover",
        "agent": "standby-1",
        "failed_agent": "researcher-1",
        "checkpoint_id": "ckpt-3",
        "reason": "heartbeat lost",
    }
    body = json.dumps(message).encode()
    assert post(client, standby, body, "msg_fo").status_code == 202
    assert post(client, standby, body, "msg_fo").json() == {"status": "duplicate"}
    assert standby.join_remediations(10)
    assert taken_over == [("researcher-1", "ckpt-3")]


def test_rotated_secrets_are_all_accepted(make_agent: AgentFactory, client: httpx.Client) -> None:
    env = {semconv.WEBHOOK_SECRET_ENV: f"{NEW_SECRET}, {SECRET}"}
    agent, _ = make_agent(instance_id=AGENT_ID, environ=env)
    old = post(client, agent, body_of(type="breaker", state="open"), "m1", secret=SECRET)
    new = post(client, agent, body_of(type="breaker", state="closed"), "m2", secret=NEW_SECRET)
    assert (old.status_code, new.status_code) == (200, 200)
    other = "whsec_" + base64.b64encode(b"an-unknown-key-000000000000").decode()
    assert (
        post(client, agent, body_of(type="breaker", state="open"), "m3", other).status_code == 401
    )

    listed, _ = make_agent(instance_id=AGENT_ID, webhook_secret=[NEW_SECRET, SECRET])
    assert post(client, listed, body_of(type="breaker", state="open"), "m4").status_code == 200


def test_pause_mode_blocks_until_the_breaker_closes(make_agent: AgentFactory) -> None:
    agent, _ = make_agent(breaker_mode="pause", breaker_pause_timeout_s=60)
    assert agent.breaker_mode == "pause"
    agent.set_breaker_state("open", reason="spike")
    waiting = threading.Event()
    ran = threading.Event()

    def worker() -> None:
        waiting.set()
        with agent.action("resume_me"):
            ran.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert waiting.wait(10)
    assert not ran.is_set()
    agent.set_breaker_state("half_open")  # probe actions may run
    thread.join(10)
    assert ran.is_set()


def test_pause_mode_raises_after_the_timeout(make_agent: AgentFactory) -> None:
    agent, _ = make_agent(breaker_mode="pause", breaker_pause_timeout_s=0.01)
    agent.set_breaker_state("forced_open", reason="kill switch")
    with pytest.raises(CircuitOpenError) as info, agent.action("never"):
        pytest.fail("must not run")
    assert info.value.state is BreakerState.FORCED_OPEN


def test_async_pause_mode_awaits_without_blocking_the_loop(make_agent: AgentFactory) -> None:
    agent, _ = make_agent(breaker_mode="pause", breaker_pause_timeout_s=60)
    agent.set_breaker_state("open")

    async def run() -> list[str]:
        order: list[str] = []

        async def act() -> None:
            async with agent.action("resume_me"):
                order.append("action")

        task = asyncio.create_task(act())
        await asyncio.sleep(0)
        order.append("loop free")  # the paused action does not hold the event loop
        agent.set_breaker_state("closed")
        await asyncio.wait_for(task, 10)
        return order

    assert asyncio.run(run()) == ["loop free", "action"]

    timed_out, _ = make_agent(breaker_mode="pause", breaker_pause_timeout_s=0.01)
    timed_out.set_breaker_state("open")

    async def blocked() -> None:
        async with timed_out.action("never"):
            pytest.fail("must not run")

    with pytest.raises(CircuitOpenError):
        asyncio.run(blocked())


def test_asgi_app_applies_the_same_control(make_agent: AgentFactory) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, webhook_secret=SECRET, control_server=False)
    assert agent.control_url is None  # no thread server, nothing advertised
    restored: list[str] = []
    agent.on_rollback(restored.append)
    app = agent.asgi_app()

    async def run() -> list[tuple[int, object]]:
        transport = httpx.ASGITransport(app=app)
        results: list[tuple[int, object]] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            now = int(time.time())
            for webhook_id, body in (
                ("a1", body_of(type="breaker", state="open", reason="loop")),
                ("a1", body_of(type="breaker", state="open", reason="loop")),
                ("a2", body_of(type="rollback", checkpoint_id="ckpt-2")),
            ):
                headers = signed_headers(body, webhook_id=webhook_id, timestamp=now)
                response = await client.post("/control", content=body, headers=headers)
                results.append((response.status_code, response.json()))
            unsigned = await client.post("/", content=body_of(type="breaker", state="closed"))
            results.append((unsigned.status_code, unsigned.json()["reason"]))
            wrong_method = await client.get("/control")
            results.append((wrong_method.status_code, wrong_method.headers.get("allow")))
            elsewhere = await client.post("/other", content=b"{}")
            results.append((elsewhere.status_code, None))
            big = await client.post("/control", content=b"x" * (65 * 1024))
            results.append((big.status_code, None))
        return results

    assert asyncio.run(run()) == [
        (200, {"status": "applied", "state": "open"}),
        (200, {"status": "duplicate"}),
        (202, {"status": "accepted", "type": "rollback"}),
        (401, "missing webhook headers"),
        (405, "POST"),
        (404, None),
        (413, None),
    ]
    assert agent.breaker_state is BreakerState.OPEN
    assert agent.join_remediations(10)
    assert restored == ["ckpt-2"]


def test_asgi_app_mounted_with_a_root_path(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent(
        instance_id=AGENT_ID,
        webhook_secret=SECRET,
        control_server=False,
        control_url="https://runtime.example/agentwatch/control",
    )
    assert agent.control_url == "https://runtime.example/agentwatch/control"
    agent.force_flush()
    (beat,) = [s for s in exporter.get_finished_spans() if s.name == semconv.SPAN_HEARTBEAT]
    assert (beat.attributes or {})[semconv.CONTROL_URL] == agent.control_url
    app = agent.asgi_app()
    body = body_of(type="breaker", state="forced_open")
    headers = signed_headers(body, webhook_id="r1", timestamp=int(time.time()))
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/agentwatch/control",
        "root_path": "/agentwatch",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    chunks = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]

    async def receive() -> dict[str, object]:
        return chunks.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200
    assert agent.breaker_state is BreakerState.FORCED_OPEN


def test_asgi_app_needs_a_secret(make_agent: AgentFactory) -> None:
    agent, _ = make_agent()
    with pytest.raises(AgentwatchError, match="secret"):
        agent.asgi_app()
