"""Acting on the fleet over REST: the kill switch, silences, alerts, config from YAML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentwatch.collector import ConfigError, RunningService, ServiceSettings
from agentwatch.collector._inbox import WebhookInbox
from agentwatch.collector._settings import load_config
from agentwatch.sdk import BreakerState, CircuitOpenError, init
from tests.support import local_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox() -> Iterator[WebhookInbox]:
    receiver = WebhookInbox()
    yield receiver
    receiver.close()


@pytest.fixture
def running(data_dir: Path, webhook_secret: str, inbox: WebhookInbox) -> Iterator[RunningService]:
    alerting = {
        "route": {"receiver": "hook", "group_by": ["agent"], "group_wait": "0s"},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": inbox.url}]}],
    }
    settings = local_settings(data_dir, webhook_secret=webhook_secret, alerting=alerting)
    with RunningService(settings) as service:
        yield service


def test_the_kill_switch_stops_an_agent_and_closing_releases_it(
    running: RunningService, webhook_secret: str
) -> None:
    with init(
        "ops-agent",
        instance_id="ops-1",
        endpoint=running.otlp_endpoint,
        webhook_secret=webhook_secret,
        heartbeat_interval_s=60,
    ) as agent:
        assert agent.force_flush(10_000) and running.service.flush(10)
        url = f"{running.api_url}/api/v1/breakers/ops-1"
        opened = httpx.post(f"{url}/force-open", json={"reason": "runaway spend"})
        assert opened.status_code == 200
        assert opened.json()["state"] == "forced_open"
        assert running.service.flush(10)
        assert agent.breaker_state is BreakerState.FORCED_OPEN
        with pytest.raises(CircuitOpenError), agent.action("web_search", args={"q": 1}):
            pytest.fail("blocked")
        assert httpx.post(f"{url}/close", json={"reason": "fixed"}).json()["state"] == "closed"
        assert running.service.flush(10)
        assert agent.breaker_state is BreakerState.CLOSED
        states = {
            b["agent"]: b["state"] for b in httpx.get(f"{running.api_url}/api/v1/breakers").json()
        }
        assert states["ops-1"] == "closed"


def test_silences_are_created_listed_and_expired(running: RunningService) -> None:
    base = f"{running.api_url}/api/v1/silences"
    created = httpx.post(
        base,
        json={"matchers": ['agent="ops-1"'], "ends_at": "2999-01-01T00:00:00Z", "comment": "maint"},
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert [s["id"] for s in httpx.get(base, params={"state": "active"}).json()] == [silence["id"]]
    assert httpx.delete(f"{base}/{silence['id']}").status_code == 200
    assert httpx.get(base, params={"state": "active"}).json() == []
    assert httpx.delete(f"{base}/nope").status_code == 404
    bad = httpx.post(base, json={"matchers": ["agent=~("], "ends_at": "2999-01-01T00:00:00Z"})
    assert bad.status_code == 400
    naive = httpx.post(base, json={"matchers": ['a="b"'], "ends_at": "2999-01-01T00:00:00"})
    assert naive.status_code == 400


def test_yaml_config_feeds_alerting_and_remediation(tmp_path: Path, webhook_secret: str) -> None:
    path = tmp_path / "agentwatch.yaml"
    path.write_text(
        "alerting:\n"
        "  route: {receiver: ops, group_wait: 10s}\n"
        "  receivers: [{name: ops, webhook_configs: [{url: 'http://127.0.0.1:9/x'}]}]\n"
        "remediation:\n"
        "  breaker_min_severity: warning\n"
        "  per_detector: {loop: never}\n"
        "  open_wait: 2m\n"
        "  probe_actions: 5\n"
    )
    settings = ServiceSettings.from_env(
        {"AGENTWATCH_WEBHOOK_SECRET": webhook_secret}, config_file=path
    )
    assert settings.breaker_min_severity == "warning"
    assert settings.breaker_policy == {"loop": "never"}
    assert settings.breaker_open_wait_s == 120.0
    assert settings.breaker_probe_actions == 5
    assert settings.alerting is not None and settings.alerting["route"]["receiver"] == "ops"
    path.write_text("remediation: {open_wiat: 2m}\n")
    with pytest.raises(ConfigError, match=r"unknown remediation\.open_wiat"):
        load_config(path)
    path.write_text("alerting: {route: {receiver: x}}\n")
    with pytest.raises(ConfigError, match="AGENTWATCH_WEBHOOK_SECRET"):
        ServiceSettings.from_env({}, config_file=path)


def test_yaml_turns_on_session_patterns(tmp_path: Path) -> None:
    path = tmp_path / "agentwatch.yaml"
    path.write_text("session_patterns: true\n")
    assert ServiceSettings.from_env({}, config_file=path).session_patterns
    assert not ServiceSettings.from_env({}).session_patterns  # off by default
    settings = local_settings(tmp_path / "data", session_patterns=True)
    with RunningService(settings) as running:
        assert running.service.pipeline.session_patterns
