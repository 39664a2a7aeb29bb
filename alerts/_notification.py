"""A group notification, Alertmanager's version-4 webhook payload, and outbound messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from ._alert import STATUS_FIRING, STATUS_RESOLVED, Alert

PRIORITY_CONTROL: Final = 0
PRIORITY_NOTIFY: Final = 1
GO_ZERO_TIME: Final = "0001-01-01T00:00:00Z"


def go_time(ns: int) -> str:
    """Format ns since the Unix epoch as Go's ``time.RFC3339Nano`` (trailing zeros dropped)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f".{rest:09d}".rstrip("0") if rest else ""
    return f"{stamp}{frac}Z"


@dataclass(frozen=True, slots=True)
class GroupNotification:
    """What one receiver is told about one alert group at one flush.

    Attributes:
        receiver: The receiver's name.
        group_key: Alertmanager's group key (``{}/{...}:{agent="a"}``).
        group_labels: The labels the group is identified by.
        alerts: The group's alerts (silenced and inhibited ones left out), by fingerprint.
        reason: Why it notifies: a ``REASON_*`` of the dedup rules.
        now_ns: The flush time, ns since the Unix epoch.
        external_url: A link back to agentwatch ("" when unset).
        truncated_alerts: Alerts left out to respect a size limit.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    reason: str
    now_ns: int
    external_url: str = ""
    truncated_alerts: int = 0

    @property
    def status(self) -> str:
        """``"firing"`` when any alert fires, else ``"resolved"``."""
        firing = any(not a.resolved(self.now_ns) for a in self.alerts)
        return STATUS_FIRING if firing else STATUS_RESOLVED

    def firing(self) -> list[Alert]:
        """The firing alerts."""
        return [a for a in self.alerts if not a.resolved(self.now_ns)]

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert has with the same value."""
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        """Annotations every alert has with the same value."""
        return _common([a.annotations for a in self.alerts])


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


def webhook_payload(n: GroupNotification) -> dict[str, Any]:
    """Return Alertmanager's version-4 webhook payload for ``n``, field for field.

    A firing alert's ``endsAt`` is Go's zero time, as Alertmanager hides an end not yet reached.
    One field is added after Alertmanager's: ``notification_reason``. Pure and thread-safe.
    """
    alerts = [
        {
            "status": a.status(n.now_ns),
            "labels": dict(sorted(a.labels.items())),
            "annotations": dict(sorted(a.annotations.items())),
            "startsAt": go_time(a.starts_at_ns),
            "endsAt": go_time(a.ends_at_ns) if a.resolved(n.now_ns) else GO_ZERO_TIME,
            "generatorURL": a.generator_url,
            "fingerprint": a.fingerprint,
        }
        for a in n.alerts
    ]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.truncated_alerts,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(sorted(n.group_labels.items())),
        "commonLabels": n.common_labels,
        "commonAnnotations": n.common_annotations,
        "externalURL": n.external_url,
        "alerts": alerts,
        "notification_reason": n.reason,
    }


def to_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def stable_id(*parts: str) -> str:
    """A deterministic webhook-id: ``msg_`` + 26 hex digits of SHA-256 over ``parts``.

    The same decision always gets the same id, so a decision replayed after a crash is recognised
    by the outbox (and by idempotent receivers) as the same message.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return "msg_" + digest[:26]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One signed POST the outbox must deliver at least once.

    Attributes:
        webhook_id: The Standard Webhooks id, the same on every attempt; the outbox's key.
        destination: What the per-receiver breaker and ordering are keyed by
            (``"pagerduty/0"``, ``"control:agent-1"``).
        target: The kind recorded in deliveries: ``"webhook"``, ``"pagerduty"``, ``"slack"``,
            ``"control"``.
        url: Where to POST; never logged.
        body: The exact body.
        priority: 0 for control commands (sent first), 1 for notifications.
        min_interval_s: Minimum spacing between sends to this destination (Slack: 1 s).
        agent: The agent it is about ("" when many).
        action: ``"notify"``, ``"breaker:open"``, ``"rollback:<id>"`` ...
        anomaly_id: The anomaly that caused it ("" when none or many).
    """

    webhook_id: str
    destination: str
    target: str
    url: str
    body: bytes
    priority: int = PRIORITY_NOTIFY
    min_interval_s: float = 0.0
    agent: str = ""
    action: str = ""
    anomaly_id: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


class Integration(Protocol):
    """One way of telling a receiver (a webhook, PagerDuty, Slack): renders, never sends.

    The :class:`~agentwatch.alerts.Outbox` sends what it renders, durably, signed and retried.
    """

    @property
    def send_resolved(self) -> bool: ...

    def render(
        self, n: GroupNotification, /, *, webhook_id: str, destination: str
    ) -> OutboundMessage: ...
