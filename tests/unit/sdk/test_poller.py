"""The pull fallback against a loopback server speaking the control-state contract."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentwatch.sdk import BreakerState, semconv

from .conftest import SECRET, AgentFactory, signed_headers

AGENT_ID = "researcher-1"


class ControlApi:
    """``GET /api/v1/agents/{agent}/control`` from a dict; records requests and headers."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.polled = threading.Condition()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                prefix, _, rest = self.path.partition("/api/v1/agents/")
                agent, _, tail = rest.partition("/")
                state = api.states.get(agent) if not prefix and tail == "control" else None
                payload = json.dumps(state).encode() if state is not None else b"{}"
                with api.polled:  # before answering, so the poller sees it recorded
                    api.requests.append((self.path, self.headers.get("authorization")))
                    api.polled.notify_all()
                self.send_response(200 if state is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def set(self, breaker: str, version: int, rollback: dict[str, str] | None = None) -> None:
        self.states[AGENT_ID] = {
            "agent": AGENT_ID,
            "breaker": breaker,
            "reason": "from the api",
            "anomaly_id": "an_9",
            "version": version,
            "rollback": rollback,
        }

    def wait_for_requests(self, n: int, timeout_s: float = 10) -> bool:
        with self.polled:
            return self.polled.wait_for(lambda: len(self.requests) >= n, timeout_s)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[ControlApi]:
    server = ControlApi()
    yield server
    server.close()


def make(make_agent: AgentFactory, api: ControlApi, **kwargs: Any) -> Any:
    kwargs.setdefault("control_poll_interval_s", 3600)  # tests poll by hand
    agent, _ = make_agent(instance_id=AGENT_ID, api_url=api.url, **kwargs)
    return agent


def test_poll_applies_the_breaker_state_and_sends_the_token(
    make_agent: AgentFactory, api: ControlApi
) -> None:
    agent = make(make_agent, api, api_token="tok-123")
    api.set("open", version=1)
    assert agent.poll_control()
    assert agent.breaker_state is BreakerState.OPEN
    path, authorization = api.requests[-1]
    assert path == semconv.CONTROL_STATE_PATH.format(agent=AGENT_ID)
    assert authorization == "Bearer tok-123"
    api.set("closed", version=2)
    assert agent.poll_control()
    assert agent.breaker_state is BreakerState.CLOSED


def test_no_token_no_authorization_header(make_agent: AgentFactory, api: ControlApi) -> None:
    agent = make(make_agent, api)
    api.set("closed", version=0)
    assert agent.poll_control()
    assert api.requests[-1][1] is None


def test_an_unchanged_version_does_not_override_a_newer_webhook(
    make_agent: AgentFactory, api: ControlApi
) -> None:
    agent = make(make_agent, api, webhook_secret=SECRET)
    api.set("closed", version=4)
    assert agent.poll_control()
    # A webhook opens the breaker before the API's state shows it.
    body = json.dumps({"type": "breaker", "agent": AGENT_ID, "state": "open"}).encode()
    headers = signed_headers(body, webhook_id="w1", timestamp=int(time.time()))
    assert httpx.post(agent.control_url, content=body, headers=headers).status_code == 200
    assert agent.poll_control()
    assert agent.breaker_state is BreakerState.OPEN
    api.set("open", version=5)  # the API catches up: idempotent
    assert agent.poll_control()
    assert agent.breaker_state is BreakerState.OPEN


def test_a_rollback_seen_by_webhook_and_by_poll_runs_once(
    make_agent: AgentFactory, api: ControlApi
) -> None:
    agent = make(make_agent, api, webhook_secret=SECRET)
    restored: list[str] = []
    agent.on_rollback(restored.append)
    body = json.dumps({"type": "rollback", "agent": AGENT_ID, "checkpoint_id": "ckpt-5"}).encode()
    headers = signed_headers(body, webhook_id="wh_rb_1", timestamp=int(time.time()))
    assert httpx.post(agent.control_url, content=body, headers=headers).status_code == 202
    pending = {"checkpoint_id": "ckpt-5", "webhook_id": "wh_rb_1", "reason": "", "anomaly_id": ""}
    api.set("closed", version=1, rollback=pending)
    assert agent.poll_control()
    assert agent.poll_control()
    assert agent.join_remediations(10)
    assert restored == ["ckpt-5"]


def test_a_rollback_only_the_poll_sees_runs_once_and_the_webhook_retry_is_a_duplicate(
    make_agent: AgentFactory, api: ControlApi
) -> None:
    agent = make(make_agent, api, webhook_secret=SECRET)
    restored: list[str] = []
    agent.on_rollback(restored.append)
    pending = {"checkpoint_id": "ckpt-6", "webhook_id": "wh_rb_2", "reason": "r", "anomaly_id": ""}
    api.set("closed", version=1, rollback=pending)
    assert agent.poll_control()
    assert agent.join_remediations(10)
    body = json.dumps({"type": "rollback", "agent": AGENT_ID, "checkpoint_id": "ckpt-6"}).encode()
    headers = signed_headers(body, webhook_id="wh_rb_2", timestamp=int(time.time()))
    late = httpx.post(agent.control_url, content=body, headers=headers)
    assert (late.status_code, late.json()) == (200, {"status": "duplicate"})
    assert agent.join_remediations(10)
    assert restored == ["ckpt-6"]


@pytest.mark.parametrize(
    "state",
    [
        None,  # 404: unknown agent
        {"agent": AGENT_ID, "breaker": "ajar", "version": 1, "rollback": None},
        {"agent": AGENT_ID, "breaker": "open", "rollback": None},
        {"agent": AGENT_ID, "breaker": "open", "version": 1, "rollback": "ckpt"},
    ],
)
def test_unknown_agents_and_malformed_states_change_nothing(
    make_agent: AgentFactory, api: ControlApi, state: dict[str, Any] | None
) -> None:
    agent = make(make_agent, api)
    if state is not None:
        api.states[AGENT_ID] = state
    assert not agent.poll_control()
    assert agent.breaker_state is BreakerState.CLOSED


def test_unreachable_api_is_not_an_error(make_agent: AgentFactory, api: ControlApi) -> None:
    agent, _ = make_agent(instance_id=AGENT_ID, api_url="http://127.0.0.1:9")
    assert not agent.poll_control()
    no_api, _ = make_agent()
    assert not no_api.poll_control()


def test_the_poller_thread_converges_without_help(
    make_agent: AgentFactory, api: ControlApi
) -> None:
    api.set("forced_open", version=3)
    opened = threading.Event()
    agent = make(make_agent, api, control_poll_interval_s=0.05)
    agent.add_breaker_listener(lambda state, *_: opened.set())
    assert opened.wait(10)
    assert agent.breaker_state is BreakerState.FORCED_OPEN
    assert api.wait_for_requests(2)


def test_api_settings_from_the_environment(make_agent: AgentFactory, api: ControlApi) -> None:
    env = {
        semconv.API_URL_ENV: api.url + "/",
        semconv.API_TOKEN_ENV: "env-token",
        "AGENTWATCH_CONTROL_POLL_INTERVAL_S": "3600",
    }
    agent, _ = make_agent(instance_id=AGENT_ID, environ=env)
    api.set("half_open", version=1)
    assert agent.poll_control()
    assert agent.breaker_state is BreakerState.HALF_OPEN
    assert api.requests[-1][1] == "Bearer env-token"
