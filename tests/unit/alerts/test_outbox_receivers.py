"""The outbox (classification, retries, breakers, idempotence) and the receivers' payloads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentwatch.alerts import (
    Alert,
    GroupNotification,
    Outbox,
    PagerDutyIntegration,
    SlackIntegration,
    WebhookIntegration,
    classify,
    dedup_key,
    webhook_payload,
)
from agentwatch.alerts._notification import OutboundMessage

from .conftest import FakeClock, LoopbackReceiver
from .test_signing import SPEC_SECRET, verify

NS = 10**9
T = 1_700_000_000


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "ok"), (202, "ok"), (204, "ok"),
        (400, "fail"), (401, "fail"), (403, "fail"), (404, "fail"), (410, "fail"), (422, "fail"),
        (408, "retry"), (429, "retry"),
        (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"),
        (501, "fail"), (505, "fail"),  # not implemented / unsupported: a retry will not help
        (None, "retry"),  # no response: connection refused, timeout
    ],
)  # fmt: skip
def test_retry_classification(status: int | None, verdict: str) -> None:
    assert classify(status) == verdict


def message(
    url: str, n: int = 0, destination: str = "hook/0", target: str = "webhook"
) -> OutboundMessage:
    return OutboundMessage(f"msg_{destination}_{n}", destination, target, url, b'{"n":%d}' % n)


def outbox(clock: FakeClock, tmp_path: Path, **kwargs: object) -> Outbox:
    return Outbox(
        tmp_path / "outbox.sqlite3",
        secret=SPEC_SECRET,
        clock=clock.time,
        rng=random.Random(3),
        **kwargs,  # type: ignore[arg-type]  # test-only pass-through
    )


def run(box: Outbox, clock: FakeClock, until_s: float) -> None:
    end = clock.time() + until_s
    while True:
        box.drain()
        due = box.next_due_s()
        if due is None or due > end:
            return
        clock.now = max(clock.now, due)


def test_400_is_not_retried_and_enqueue_is_idempotent(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    receiver.respond((400, {}))
    box = outbox(clock, tmp_path)
    assert box.enqueue(message(receiver.url))
    assert not box.enqueue(message(receiver.url))  # the same webhook-id
    [delivery] = box.drain()
    assert (delivery.ok, delivery.status_code, delivery.attempts) == (False, 400, 1)
    run(box, clock, 3600)
    assert len(receiver.requests) == 1
    assert box.messages()[0]["state"] == "failed"


def test_backoff_grows_from_half_a_second(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    receiver.respond(*[(503, {})] * 4)
    box = outbox(clock, tmp_path)
    box.enqueue(message(receiver.url))
    waits = []
    for _ in range(4):
        box.drain()
        due = box.next_due_s()
        assert due is not None
        waits.append(due - clock.time())
        clock.now = due
    box.drain()
    assert [r.status for r in receiver.requests] == [503, 503, 503, 503, 200]
    for i, wait in enumerate(waits):
        base = 0.5 * 1.5**i
        assert base * 0.8 <= wait <= base * 1.2
    assert all(verify(SPEC_SECRET, r.headers, r.body) for r in receiver.requests)


def test_dead_receiver_does_not_delay_the_others(tmp_path: Path, clock: FakeClock) -> None:
    dead, alive = LoopbackReceiver(), LoopbackReceiver()
    try:
        dead.down = True
        box = outbox(clock, tmp_path, breaker_failures=2, breaker_cooldown_s=60)
        for n in range(3):
            box.enqueue(message(dead.url, n, "slack/0", "slack"))
        box.drain()
        box.drain()
        clock.advance(1)
        box.drain()
        assert box.breaker_open("slack/0")
        box.enqueue(message(alive.url, 0, "control:a1", "control"))
        box.enqueue(message(alive.url, 1, "pagerduty/0", "pagerduty"))
        assert {d.target for d in box.drain()} == {"control", "pagerduty"}
        assert len(dead.requests) == 2  # the breaker held the rest back
        dead.down = False
        run(box, clock, 600)
        assert box.pending() == 0 and len(dead.delivered()) == 3
        assert [json.loads(r.body)["n"] for r in dead.delivered()] == [0, 1, 2]  # in order
    finally:
        dead.close()
        alive.close()


def note(*alerts: Alert, now: int = (T + 100) * NS) -> GroupNotification:
    return GroupNotification(
        "team", '{}:{agent="a1"}', {"agent": "a1"}, alerts, "new_firing_alerts", now, "http://aw"
    )


FIRING = Alert(
    {"alertname": "loop", "agent": "a1", "severity": "critical", "service": "planner"},
    {"summary": "same tool x5"},
    starts_at_ns=T * NS,
    ends_at_ns=(T + 300) * NS,
    generator_url="http://aw/a/1",
)
RESOLVED = Alert(
    {"alertname": "cost", "agent": "a1", "severity": "warning", "service": "planner"},
    {"summary": "spend"},
    starts_at_ns=T * NS,
    ends_at_ns=(T + 50) * NS + 500_000_000,
)


def test_webhook_v4_payload_field_for_field() -> None:
    payload = webhook_payload(note(FIRING, RESOLVED))
    assert list(payload) == [
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts", "notification_reason",
    ]  # fmt: skip
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["commonLabels"] == {"agent": "a1", "service": "planner"}
    assert payload["commonAnnotations"] == {}
    firing, resolved = payload["alerts"]
    assert list(firing) == [
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
    ]  # fmt: skip
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"  # an end not yet reached is hidden
    assert firing["startsAt"] == "2023-11-14T22:13:20Z"
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2023-11-14T22:14:10.5Z"
    assert firing["fingerprint"] == FIRING.fingerprint


def test_webhook_truncation() -> None:
    msg = WebhookIntegration("http://x", max_alerts=1).render(
        note(FIRING, RESOLVED), webhook_id="msg_1", destination="d"
    )
    payload = json.loads(msg.body)
    assert payload["truncatedAlerts"] == 1 and len(payload["alerts"]) == 1


def test_pagerduty_trigger_and_resolve() -> None:
    pd = PagerDutyIntegration("routing-key")
    trigger = json.loads(pd.render(note(FIRING), webhook_id="m", destination="d").body)
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == dedup_key('{}:{agent="a1"}') and len(trigger["dedup_key"]) == 64
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "a1"
    resolve = json.loads(pd.render(note(RESOLVED), webhook_id="m", destination="d").body)
    assert resolve == {
        "routing_key": "routing-key",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert "routing-key" not in repr(pd)


def test_slack_group_stays_within_limits() -> None:
    many = [
        Alert({"alertname": "loop", "agent": f"a{i}"}, {"summary": "x" * 5000}, T * NS, 0)
        for i in range(80)
    ]
    msg = SlackIntegration("http://hooks").render(note(*many), webhook_id="m", destination="d")
    payload = json.loads(msg.body)
    assert len(payload["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in payload["blocks"])
    assert msg.min_interval_s == 1.0


def test_prune_forgets_only_old_finished_messages(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    box = outbox(clock, tmp_path, max_age_s=60.0)
    assert box.enqueue(message(receiver.url, 1))
    box.drain()  # delivered
    receiver.respond((503, {}))
    assert box.enqueue(message(receiver.url, 2, destination="hook/1"))
    box.drain()  # still pending: retried later
    clock.now += 3600
    assert box.prune(retention_s=1800) == 1  # the delivered one, finished an hour ago
    assert [m["state"] for m in box.messages()] == ["pending"]
    assert box.enqueue(message(receiver.url, 1))  # its id is forgotten: accepted again
    with pytest.raises(ValueError, match="max_age_s"):
        box.prune(retention_s=10)
