"""Slack receiver: Block Kit shape and limits, 1 message/s, 429 Retry-After, on virtual time."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from agentwatch.alerts import Notification, SlackReceiver, slack_payload

from .conftest import FakeAnomaly, FakeClock, LoopbackReceiver


@pytest.fixture
def slack(clock: FakeClock, slack_server: LoopbackReceiver) -> Iterator[SlackReceiver]:
    receiver = SlackReceiver(slack_server.url, sleep=clock.sleep, clock=clock.time)
    yield receiver
    receiver.close()


def _texts(payload: dict[str, Any]) -> list[str]:
    texts = [payload["text"]]
    for block in payload["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", [])]
    return texts


def test_payload_shape() -> None:
    payload = slack_payload(Notification.from_anomaly(FakeAnomaly()))
    assert payload["text"].startswith(":rotating_light: CRITICAL: loop on agent-1 (planner)")
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "context"]
    header, fields, evidence, context = payload["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "CRITICAL: loop on agent-1",
        "emoji": True,
    }
    assert [f["text"].split("\n")[0] for f in fields["fields"]] == [
        "*Agent*",
        "*Service*",
        "*Detector*",
        "*Score*",
        "*Severity*",
        "*Onset*",
    ]
    assert fields["fields"][3]["text"] == "*Score*\n9.5 (threshold 3)"
    assert fields["fields"][5]["text"] == "*Onset*\n2023-11-14T22:13:20.000Z"
    assert evidence["text"] == {"type": "mrkdwn", "text": "*Evidence*\nsame tool call x5"}
    elements = [e["text"] for e in context["elements"]]
    assert elements[:3] == [
        "anomaly " + "a" * 32,
        "trace 0af7651916cd43dd8448eb211c80319c",
        "span b7ad6b7169203331",
    ]


def test_resolved_notification() -> None:
    payload = slack_payload(Notification.from_anomaly(FakeAnomaly(), firing=False))
    assert payload["blocks"][0]["text"]["text"].startswith("RESOLVED CRITICAL")
    assert payload["text"].startswith(":white_check_mark:")


def test_limits_hold_for_a_huge_summary() -> None:
    huge = FakeAnomaly(
        agent="x" * 500,
        evidence={"summary": "<b>&" * 50_000},
    )
    payload = slack_payload(Notification.from_anomaly(huge))
    header, fields, evidence, _ = payload["blocks"]
    assert len(payload["blocks"]) <= 50
    assert len(header["text"]["text"]) <= 150
    assert len(evidence["text"]["text"]) <= 3000
    assert all(len(f["text"]) <= 2000 for f in fields["fields"])
    assert len(payload["text"]) <= 3000
    for text in _texts(payload)[1:]:
        assert "<b>" not in text  # escaped
        tail = text[text.rfind("&") :]
        assert ";" in tail or "&" not in text  # no entity cut in half
    assert len(json.dumps(payload)) < 20_000


def test_from_real_anomaly_with_enum_severity() -> None:
    types = pytest.importorskip("agentwatch.detectors._types")
    anomaly = types.Anomaly(
        id="b" * 32,
        agent="agent-9",
        service="coder",
        detector="action_rate",
        score=12.0,
        threshold=4.0,
        severity=types.Severity.WARNING,
        onset_ns=1,
        detected_ns=2,
        evidence={"summary": "rate x6"},
    )
    n = Notification.from_anomaly(anomaly)
    assert n.severity == "warning" and type(n.severity) is str
    assert n.summary == "rate x6"


def test_send_posts_the_payload(
    slack: SlackReceiver, slack_server: LoopbackReceiver, clock: FakeClock
) -> None:
    n = Notification.from_anomaly(FakeAnomaly())
    result = slack.send(n)
    assert (result.ok, result.attempts, result.target) == (True, 1, "slack")
    assert slack_server.requests[0].json() == slack_payload(n)
    assert slack_server.requests[0].headers["content-type"] == "application/json"
    assert clock.sleeps == []


def test_one_message_per_second(
    slack: SlackReceiver, slack_server: LoopbackReceiver, clock: FakeClock
) -> None:
    n = Notification.from_anomaly(FakeAnomaly())
    slack.send(n)
    slack.send(n)  # no time passed: waits a full second
    clock.advance(0.3)
    slack.send(n)  # waits the remaining 0.7 s
    clock.advance(5)
    slack.send(n)  # long after: no wait
    assert clock.sleeps == pytest.approx([1.0, 0.7])
    assert len(slack_server.requests) == 4


def test_429_waits_retry_after(
    slack: SlackReceiver, slack_server: LoopbackReceiver, clock: FakeClock
) -> None:
    slack_server.respond((429, {"Retry-After": "3"}))
    result = slack.send(Notification.from_anomaly(FakeAnomaly()))
    assert (result.ok, result.attempts) == (True, 2)
    assert clock.sleeps == [3.0]
    assert len(slack_server.requests) == 2


def test_url_never_logged_or_shown(
    slack: SlackReceiver, slack_server: LoopbackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_server.respond((503, {}), (404, {}))
    result = slack.send(Notification.from_anomaly(FakeAnomaly()))
    assert (result.ok, result.status_code) == (False, 404)
    # Ours only: httpx itself logs request URLs at INFO (see SlackReceiver's docstring).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("agentwatch")]
    assert ours and not any(slack_server.url in m for m in ours)
    assert slack_server.url not in repr(slack)
    assert slack_server.url not in repr(result)


def test_validates() -> None:
    with pytest.raises(ValueError, match="url"):
        SlackReceiver("")
    with pytest.raises(ValueError, match="min_interval_s"):
        SlackReceiver("http://127.0.0.1:1/x", min_interval_s=-1)
