"""SDK -> OTLP/HTTP -> collector -> ClickHouse -> detector -> signed webhook -> breaker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentwatch.collector import RunningService
from agentwatch.collector._inbox import WebhookInbox
from agentwatch.sdk import Agent, BreakerState, CircuitOpenError, fingerprint, init, semconv
from tests.support import local_settings

pytestmark = pytest.mark.e2e

QUERY = {"query": "latest results", "limit": 10}


@pytest.fixture
def slack() -> Iterator[WebhookInbox]:
    inbox = WebhookInbox()
    yield inbox
    inbox.close()


@pytest.fixture
def running(data_dir: Path, webhook_secret: str, slack: WebhookInbox) -> Iterator[RunningService]:
    settings = local_settings(
        data_dir,
        webhook_secret=webhook_secret,
        slack_webhook_url=slack.url,
        breaker_policy={"loop": "warning"},  # a loop alone opens the breaker here
        decode_workers=1,  # the production path: traces decoded in a worker process
    )
    with RunningService(settings) as service:
        yield service


@pytest.fixture
def agent(running: RunningService, webhook_secret: str) -> Iterator[Agent]:
    with init(
        "research-agent",
        instance_id="research-agent-01",
        endpoint=running.otlp_endpoint,
        webhook_secret=webhook_secret,
        heartbeat_interval_s=60,
    ) as handle:
        yield handle


def _sync(agent: Agent, running: RunningService) -> None:
    """Export what the agent recorded, then let the service score, deliver and store it."""
    assert agent.force_flush(10_000)
    assert running.service.flush(10)


def test_a_loop_is_flagged_at_the_third_repeat_and_the_next_action_is_refused(
    running: RunningService, agent: Agent, slack: WebhookInbox
) -> None:
    _sync(agent, running)  # the first heartbeat registers the agent and its control URL
    assert running.service.registry.control_url(agent.instance_id) == agent.control_url

    for _ in range(2):
        with agent.action("web_search", args=QUERY):
            pass
    _sync(agent, running)
    assert running.service.anomalies() == []
    assert agent.breaker_state is BreakerState.CLOSED

    with agent.action("web_search", args=QUERY):
        pass
    _sync(agent, running)

    # Detected at the 3rd identical call, stored, served by the API.
    since = "2000-01-01T00:00:00Z"
    response = httpx.get(f"{running.api_url}/api/v1/anomalies", params={"since": since})
    assert response.status_code == 200
    (anomaly,) = response.json()
    assert anomaly["detector"] == "loop"
    assert anomaly["agent"] == "research-agent-01"
    assert anomaly["service"] == "research-agent"
    assert anomaly["score"] == 3
    assert anomaly["severity"] == "warning"
    assert anomaly["evidence"]["summary"]
    assert set(anomaly) >= {"id", "onset_at", "detected_at", "evidence"}

    # The signed webhook reached the agent's control receiver and opened its breaker.
    assert agent.breaker_state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as refused, agent.action("web_search", args=QUERY):
        pytest.fail("the action body must not run while the breaker is open")
    assert refused.value.anomaly_id == anomaly["id"]

    # Slack got the alert in incoming-webhook format.
    assert slack.wait_for(1)
    message = slack.received[0].json()
    assert "research-agent-01" in message["text"]
    assert message["blocks"]

    # Every delivery is logged; the control webhook succeeded.
    _, log = running.service.storage.query(
        "SELECT Kind, Agent, Ok, AnomalyId FROM agentwatch_remediations ORDER BY Kind"
    )
    assert ("control", "research-agent-01", True, anomaly["id"]) in log


def test_spans_land_in_otel_traces_in_the_exporter_form(
    running: RunningService, agent: Agent
) -> None:
    with agent.action("fetch_page", args={"url": "https://example.org"}):
        pass
    with pytest.raises(TimeoutError), agent.action("web_search", args=QUERY):
        raise TimeoutError("search backend timed out")
    _sync(agent, running)

    instance = semconv.SERVICE_INSTANCE_ID
    _, rows = running.service.storage.query(
        "SELECT SpanName, SpanKind, ServiceName, ResourceAttributes[{instance:String}],"
        " SpanAttributes, StatusCode, Duration, length(TraceId), length(SpanId), ScopeName"
        " FROM otel_traces WHERE SpanName LIKE 'execute_tool %' ORDER BY Timestamp",
        {"instance": instance},
    )
    assert len(rows) == 2
    fetch, search = rows
    assert fetch[0] == "execute_tool fetch_page"
    assert fetch[1] == "Internal"
    assert fetch[2] == "research-agent"
    assert fetch[3] == "research-agent-01"
    assert fetch[4][semconv.GEN_AI_OPERATION_NAME] == semconv.OP_EXECUTE_TOOL
    assert fetch[4][semconv.GEN_AI_TOOL_NAME] == "fetch_page"
    assert fetch[4][semconv.ACTION_FINGERPRINT] == fingerprint(
        "fetch_page", {"url": "https://example.org"}
    )
    assert fetch[5] == "Unset"
    assert fetch[6] > 0
    assert (fetch[7], fetch[8]) == (32, 16)
    assert fetch[9].startswith("agentwatch")
    assert search[5] == "Error"
    assert search[4][semconv.ERROR_TYPE].endswith("TimeoutError")

    _, beats = running.service.storage.query(
        "SELECT SpanAttributes FROM otel_traces WHERE SpanName = {name:String}",
        {"name": semconv.SPAN_HEARTBEAT},
    )
    assert beats[0][0][semconv.CONTROL_URL] == agent.control_url
    assert int(beats[0][0][semconv.HEARTBEAT_SEQ]) >= 0

    # The trace-id lookup table is fed by the exporter's materialized view.
    _, lookup = running.service.storage.query("SELECT count() FROM otel_traces_trace_id_ts")
    assert lookup[0][0] >= 1
