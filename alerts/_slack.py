"""Slack incoming-webhook receiver: Block Kit messages, 1 message/s per webhook, 429 Retry-After."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ._anomaly import AnomalyLike, summary_of
from ._control import rfc3339
from ._delivery import Clock, Delivery, RetryingPoster, RetryPolicy, Rng, Sleep
from ._signing import new_webhook_id

# Slack's documented Block Kit limits.
MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_TEXT_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_CHARS = 3000

_SEVERITY_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


@dataclass(frozen=True, slots=True)
class Notification:
    """What a receiver tells people about one anomaly (firing) or its end (resolved).

    Attributes:
        anomaly_id: The anomaly's id.
        agent: The agent instance id.
        service: The agent's cohort.
        detector: The detector's name.
        score: The score that crossed the threshold.
        threshold: The threshold.
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        onset_ns: Estimated onset, ns since the Unix epoch.
        detected_ns: Detection time, ns since the Unix epoch.
        summary: The evidence summary.
        trace_id: Trace id of the triggering span ("" when unknown).
        span_id: Span id of the triggering span ("" when unknown).
        firing: False for a resolved notification.
    """

    anomaly_id: str
    agent: str
    service: str
    detector: str
    score: float
    threshold: float
    severity: str
    onset_ns: int
    detected_ns: int
    summary: str
    trace_id: str = ""
    span_id: str = ""
    firing: bool = True

    @classmethod
    def from_anomaly(cls, anomaly: AnomalyLike, *, firing: bool = True) -> Notification:
        """Build a notification from anything shaped like ``agentwatch.detectors.Anomaly``."""
        return cls(
            anomaly_id=anomaly.id,
            agent=anomaly.agent,
            service=anomaly.service,
            detector=anomaly.detector,
            score=float(anomaly.score),
            threshold=float(anomaly.threshold),
            severity=str(getattr(anomaly.severity, "value", anomaly.severity)),
            onset_ns=anomaly.onset_ns,
            detected_ns=anomaly.detected_ns,
            summary=summary_of(anomaly),
            trace_id=anomaly.trace_id,
            span_id=anomaly.span_id,
            firing=firing,
        )


class Receiver(Protocol):
    """Delivers notifications to people; :class:`SlackReceiver` is one. Must not raise."""

    def send(self, notification: Notification, /) -> Delivery: ...


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending in an ellipsis, never mid-entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def slack_payload(n: Notification) -> dict[str, Any]:
    """Return the incoming-webhook JSON for ``n``: a ``text`` fallback plus Block Kit ``blocks``.

    Every text is escaped and cut to Slack's limits, so a huge evidence summary cannot make Slack
    reject the message. Pure and thread-safe.
    """
    severity = n.severity.upper()
    state = severity if n.firing else f"RESOLVED {severity}"
    emoji = _SEVERITY_EMOJI.get(n.severity, ":bell:") if n.firing else ":white_check_mark:"
    title = f"{state}: {n.detector} on {n.agent}"
    fields = [
        ("Agent", n.agent),
        ("Service", n.service),
        ("Detector", n.detector),
        ("Score", f"{n.score:.4g} (threshold {n.threshold:.4g})"),
        ("Severity", n.severity),
        ("Onset", rfc3339(n.onset_ns)),
    ][:MAX_FIELDS]
    context = [f"anomaly {n.anomaly_id}"]
    if n.trace_id:
        context.append(f"trace {n.trace_id}")
    if n.span_id:
        context.append(f"span {n.span_id}")
    context.append(f"detected {rfc3339(n.detected_ns)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(title, MAX_HEADER_CHARS),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*{name}*\n{escape_mrkdwn(value)}", MAX_FIELD_CHARS)
                for name, value in fields
            ],
        },
        {
            "type": "section",
            "text": _mrkdwn(f"*Evidence*\n{escape_mrkdwn(n.summary)}", MAX_SECTION_TEXT_CHARS),
        },
        {
            "type": "context",
            "elements": [
                _mrkdwn(escape_mrkdwn(c), MAX_FIELD_CHARS) for c in context[:MAX_CONTEXT_ELEMENTS]
            ],
        },
    ]
    fallback = (
        f"{emoji} {escape_mrkdwn(title)} ({escape_mrkdwn(n.service)}): {escape_mrkdwn(n.summary)}"
    )
    return {"text": truncate(fallback, MAX_FALLBACK_CHARS), "blocks": blocks[:MAX_BLOCKS]}


class SlackReceiver(RetryingPoster):
    """Posts notifications to one Slack incoming webhook, at most one message per second.

    Thread-safe: concurrent ``send`` calls are serialised, since Slack allows one message per second
    per webhook anyway. ``send`` blocks for the rate-limit wait plus up to ``policy.deadline_s``.
    The webhook URL is a secret: it is never logged, put in results or shown by ``repr``. Note that
    httpx itself logs each request's URL at INFO on the ``httpx`` logger; services should keep that
    logger at WARNING.

    Args:
        url: The incoming-webhook URL.
        client: HTTP client to use; by default one is made and closed by :meth:`close`.
        policy: Retry policy (429 waits ``Retry-After``).
        sleep: Waits (rate limit and backoff); by default on the shutdown event.
        clock: Wall-clock seconds.
        rng: Jitter source.
        min_interval_s: Minimum spacing between messages (Slack: 1 per second).
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Clock = time.time,
        rng: Rng | None = None,
        min_interval_s: float = 1.0,
    ) -> None:
        if not url:
            raise ValueError("url must be non-empty")
        if not min_interval_s >= 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s!r}")
        super().__init__(client=client, policy=policy, sleep=sleep, clock=clock, rng=rng)
        self._url = url
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._next_send_s = float("-inf")

    def __repr__(self) -> str:  # the URL is a credential
        return f"{type(self).__name__}(url=<redacted>, min_interval_s={self.min_interval_s})"

    def send(self, notification: Notification, /) -> Delivery:
        """Post ``notification``; waits for the rate limit first. Blocks; never raises."""
        body = json.dumps(slack_payload(notification), ensure_ascii=False).encode()
        msg_id = new_webhook_id()
        with self._lock:
            wait = self._next_send_s - self._clock()
            if wait > 0:
                self._sleep(wait)
            try:
                return self.post(
                    self._url,
                    body,
                    lambda: {"content-type": "application/json"},
                    target="slack",
                    webhook_id=msg_id,
                )
            finally:
                self._next_send_s = self._clock() + self.min_interval_s
