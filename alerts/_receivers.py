"""Integrations that render group notifications: generic webhook (Alertmanager v4), PagerDuty
Events API v2, and Slack (Block Kit). They render; the outbox sends, signs and retries."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from ._alert import (
    ANNOTATION_EVIDENCE,
    ANNOTATION_QUERY,
    ANNOTATION_SCORE,
    ANNOTATION_SUMMARY,
    LABEL_AGENT,
    LABEL_ALERTNAME,
    LABEL_SERVICE,
    LABEL_SEVERITY,
    STATUS_FIRING,
    Alert,
)
from ._notification import (
    GroupNotification,
    OutboundMessage,
    go_time,
    to_body,
    webhook_payload,
)
from ._slack import (
    MAX_BLOCKS,
    MAX_FALLBACK_CHARS,
    MAX_FIELD_CHARS,
    MAX_HEADER_CHARS,
    MAX_SECTION_TEXT_CHARS,
    escape_mrkdwn,
    truncate,
)

PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SUMMARY_MAX: Final = 1024
PAGERDUTY_SEVERITIES: Final = ("critical", "error", "warning", "info")
_SEVERITY_ORDER: Final = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class WebhookIntegration:
    """A generic webhook receiving Alertmanager's version-4 payload. Immutable, thread-safe.

    Args:
        url: Where to POST; a secret, never logged.
        send_resolved: Tell the receiver about resolved alerts (Alertmanager's default: true).
        max_alerts: Send at most this many alerts (0: all); the rest count in ``truncatedAlerts``.
    """

    target = "webhook"

    def __init__(self, url: str, *, send_resolved: bool = True, max_alerts: int = 0) -> None:
        if not url:
            raise ValueError("url must be non-empty")
        if max_alerts < 0:
            raise ValueError(f"max_alerts must be >= 0, got {max_alerts}")
        self._url = url
        self._send_resolved = send_resolved
        self.max_alerts = max_alerts

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url=<redacted>, send_resolved={self._send_resolved})"

    @property
    def send_resolved(self) -> bool:
        return self._send_resolved

    def render(
        self, n: GroupNotification, /, *, webhook_id: str, destination: str
    ) -> OutboundMessage:
        """Render ``n`` as the v4 payload."""
        if self.max_alerts and len(n.alerts) > self.max_alerts:
            n = GroupNotification(
                n.receiver,
                n.group_key,
                n.group_labels,
                n.alerts[: self.max_alerts],
                n.reason,
                n.now_ns,
                n.external_url,
                len(n.alerts) - self.max_alerts,
            )
        return OutboundMessage(
            webhook_id, destination, self.target, self._url, to_body(webhook_payload(n))
        )


def pagerduty_severity(severity: str) -> str:
    """Map a severity to PagerDuty's: critical, error, warning or info (unknown: error)."""
    value = severity.lower()
    return value if value in PAGERDUTY_SEVERITIES else "error"


def dedup_key(group_key: str) -> str:
    """PagerDuty's ``dedup_key``: SHA-256 of the group key in hex, stable across restarts."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def _worst_severity(alerts: list[Alert]) -> str:
    severities = [a.labels.get(LABEL_SEVERITY, "") for a in alerts]
    known = [s for s in severities if s in _SEVERITY_ORDER]
    return max(known, key=lambda s: _SEVERITY_ORDER[s]) if known else "error"


def pagerduty_payload(n: GroupNotification, routing_key: str) -> dict[str, Any]:
    """Return the Events API v2 event: ``trigger`` while any alert fires, else ``resolve``."""
    key = dedup_key(n.group_key)
    if n.status != STATUS_FIRING:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    firing = n.firing()
    first = firing[0]
    names = sorted({a.labels.get(LABEL_ALERTNAME, "") for a in firing})
    agents = sorted({a.labels.get(LABEL_AGENT, "") for a in firing})
    summary = (
        f"[FIRING:{len(firing)}] {', '.join(names)} on {', '.join(agents)}: "
        f"{first.annotations.get(ANNOTATION_SUMMARY, '')}"
    )
    details = {
        "firing": [{"labels": dict(a.labels), "annotations": dict(a.annotations)} for a in firing],
        "num_firing": len(firing),
        "num_resolved": len(n.alerts) - len(firing),
        "notification_reason": n.reason,
    }
    payload: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": truncate(summary, PAGERDUTY_SUMMARY_MAX),
            "source": first.labels.get(LABEL_AGENT, "agentwatch"),
            "severity": pagerduty_severity(_worst_severity(firing)),
            "timestamp": go_time(first.starts_at_ns),
            "component": first.labels.get(LABEL_SERVICE, ""),
            "group": first.labels.get(LABEL_SERVICE, ""),
            "class": first.labels.get(LABEL_ALERTNAME, ""),
            "custom_details": details,
        },
        "client": "agentwatch",
    }
    if n.external_url:
        payload["client_url"] = n.external_url
    return payload


class PagerDutyIntegration:
    """PagerDuty Events API v2: trigger and resolve by ``dedup_key``. Immutable, thread-safe.

    The outbox retries 429 and 5xx and gives up on 400 (an invalid event never becomes valid).

    Args:
        routing_key: The integration key; a secret, never logged.
        url: The Events API endpoint.
        send_resolved: Send ``resolve`` events (default true).
    """

    target = "pagerduty"

    def __init__(
        self, routing_key: str, *, url: str = PAGERDUTY_EVENTS_URL, send_resolved: bool = True
    ) -> None:
        if not routing_key:
            raise ValueError("routing_key must be non-empty")
        self._routing_key = routing_key
        self._url = url
        self._send_resolved = send_resolved

    def __repr__(self) -> str:
        return f"{type(self).__name__}(routing_key=<redacted>, url=<redacted>)"

    @property
    def send_resolved(self) -> bool:
        return self._send_resolved

    def render(
        self, n: GroupNotification, /, *, webhook_id: str, destination: str
    ) -> OutboundMessage:
        """Render ``n`` as one Events API v2 event."""
        body = to_body(pagerduty_payload(n, self._routing_key))
        return OutboundMessage(webhook_id, destination, self.target, self._url, body)


def slack_group_payload(n: GroupNotification) -> dict[str, Any]:
    """Return a Block Kit message for a group: a header, one section per alert, a fallback.

    Stays within Slack's limits (50 blocks, 3,000 characters per section). Pure, thread-safe.
    """
    firing = n.firing()
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    labels = " ".join(f"{k}={v}" for k, v in sorted(n.group_labels.items()))
    title = f"[{state}] {labels}".strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(title, MAX_HEADER_CHARS)},
        }
    ]
    room = MAX_BLOCKS - 2
    for alert in n.alerts[:room]:
        status = alert.status(n.now_ns)
        head = (
            f"*{escape_mrkdwn(alert.labels.get(LABEL_ALERTNAME, ''))}* on "
            f"*{escape_mrkdwn(alert.labels.get(LABEL_AGENT, ''))}* ({status}, "
            f"{escape_mrkdwn(alert.labels.get(LABEL_SEVERITY, ''))}, "
            f"score {escape_mrkdwn(alert.annotations.get(ANNOTATION_SCORE, '?'))})"
        )
        text = f"{head}\n{escape_mrkdwn(alert.annotations.get(ANNOTATION_SUMMARY, ''))}"
        evidence = alert.annotations.get(ANNOTATION_EVIDENCE, "")
        if evidence:
            text += f"\n```{escape_mrkdwn(evidence)}```"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT_CHARS)},
            }
        )
    context = [f"reason: {n.reason}"]
    if len(n.alerts) > room:
        context.append(f"{len(n.alerts) - room} more alerts not shown")
    if n.external_url:
        context.append(f"<{n.external_url}|agentwatch>")
    query = n.alerts[0].annotations.get(ANNOTATION_QUERY, "") if n.alerts else ""
    if query:
        context.append(f"post-mortem: `{escape_mrkdwn(query)}`")
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(c, MAX_FIELD_CHARS)} for c in context],
        }
    )
    summaries = "; ".join(a.annotations.get(ANNOTATION_SUMMARY, "") for a in n.alerts[:5])
    fallback = f"{escape_mrkdwn(title)}: {escape_mrkdwn(summaries)}"
    return {"text": truncate(fallback, MAX_FALLBACK_CHARS), "blocks": blocks[:MAX_BLOCKS]}


class SlackIntegration:
    """A Slack incoming webhook receiving grouped notifications, at most 1 message/s.

    Args:
        url: The incoming-webhook URL; a secret, never logged.
        send_resolved: Post resolved groups (Alertmanager's Slack default: false).
        min_interval_s: Spacing between messages (Slack allows 1 per second per webhook).
    """

    target = "slack"

    def __init__(
        self, url: str, *, send_resolved: bool = False, min_interval_s: float = 1.0
    ) -> None:
        if not url:
            raise ValueError("url must be non-empty")
        self._url = url
        self._send_resolved = send_resolved
        self.min_interval_s = min_interval_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url=<redacted>)"

    @property
    def send_resolved(self) -> bool:
        return self._send_resolved

    def render(
        self, n: GroupNotification, /, *, webhook_id: str, destination: str
    ) -> OutboundMessage:
        """Render ``n`` as Block Kit JSON."""
        body = json.dumps(slack_group_payload(n), ensure_ascii=False).encode()
        return OutboundMessage(
            webhook_id,
            destination,
            self.target,
            self._url,
            body,
            min_interval_s=self.min_interval_s,
        )
