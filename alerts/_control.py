"""Control commands (breaker, rollback, failover) and the signed webhook client that sends them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from agentwatch.sdk.semconv import (
    BREAKER_CLOSED,
    BREAKER_FORCED_OPEN,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    CONTROL_TYPE_BREAKER,
    CONTROL_TYPE_FAILOVER,
    CONTROL_TYPE_ROLLBACK,
)
from agentwatch.sdk.webhooks import decode_secret

from ._delivery import Clock, Delivery, RetryingPoster, RetryPolicy, Rng, Sleep
from ._signing import new_webhook_id, signed_headers

CONTROL_TYPES = frozenset({CONTROL_TYPE_BREAKER, CONTROL_TYPE_ROLLBACK, CONTROL_TYPE_FAILOVER})
BREAKER_STATES = frozenset({BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN, BREAKER_FORCED_OPEN})


def rfc3339(ns: int) -> str:
    """Format ns since the Unix epoch as RFC 3339 UTC, in ms: ``2021-02-22T03:42:10.000Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}Z"


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """One instruction to an agent runtime, sent as a signed JSON webhook.

    Attributes:
        type: ``"breaker"``, ``"rollback"`` or ``"failover"``.
        agent: The agent instance id.
        state: The breaker state to apply (breaker commands only): ``"open"``, ``"closed"``, ...
        checkpoint_id: The checkpoint to restore (rollback, failover); "" when unknown.
        reason: Human-readable why (the anomaly's summary).
        anomaly_id: The anomaly that caused it; "" for manual commands.
        issued_ns: When the command was issued, ns since the Unix epoch.
        failed_agent: The lost agent whose work a failover hands over (failover only).
    """

    type: str
    agent: str
    state: str = ""
    checkpoint_id: str = ""
    reason: str = ""
    anomaly_id: str = ""
    issued_ns: int = field(default_factory=time.time_ns)
    failed_agent: str = ""

    def __post_init__(self) -> None:
        if self.type not in CONTROL_TYPES:
            raise ValueError(f"type must be one of {sorted(CONTROL_TYPES)}, got {self.type!r}")
        if not self.agent:
            raise ValueError("agent must be non-empty")
        if self.type == CONTROL_TYPE_BREAKER and self.state not in BREAKER_STATES:
            raise ValueError(f"state must be one of {sorted(BREAKER_STATES)}, got {self.state!r}")
        if self.type == CONTROL_TYPE_FAILOVER and not self.failed_agent:
            raise ValueError("failed_agent must be non-empty for a failover")

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON payload (DESIGN.md, "Service surface": control webhooks).

        Always has ``type``, ``agent``, ``reason``, ``anomaly_id`` and ``issued_at`` (RFC 3339);
        ``state`` for breaker commands, ``checkpoint_id`` for rollback and failover,
        ``failed_agent`` for failover.
        """
        payload: dict[str, Any] = {"type": self.type, "agent": self.agent}
        if self.type == CONTROL_TYPE_FAILOVER:
            payload["failed_agent"] = self.failed_agent
        if self.type == CONTROL_TYPE_BREAKER:
            payload["state"] = self.state
        else:
            payload["checkpoint_id"] = self.checkpoint_id
        payload["reason"] = self.reason
        payload["anomaly_id"] = self.anomaly_id
        payload["issued_at"] = rfc3339(self.issued_ns)
        return payload

    def to_body(self) -> bytes:
        """Return the exact request body: compact JSON, UTF-8, keys in payload order."""
        return json.dumps(self.to_payload(), separators=(",", ":"), ensure_ascii=False).encode()


class ControlSender(Protocol):
    """Sends one control command to an agent's control URL; :class:`ControlWebhookClient` is one."""

    def send(self, url: str, command: ControlCommand, /) -> Delivery: ...


class ControlWebhookClient(RetryingPoster):
    """Sends control commands as Standard Webhooks-signed POSTs, retrying within a deadline.

    Thread-safe: one instance serves all worker threads. ``send`` blocks for up to
    ``policy.deadline_s``; :meth:`shutdown` interrupts its backoff waits (with the default sleep).

    Args:
        secret: The shared signing secret, ``whsec_`` + base64 (``AGENTWATCH_WEBHOOK_SECRET``).
        client: HTTP client to use; by default one is made and closed by :meth:`close`.
        policy: Retry policy.
        sleep: Backoff wait; by default it waits on the shutdown event so shutdown interrupts it.
        clock: Wall-clock seconds (for webhook-timestamp, the deadline and the result's times).
        rng: Jitter source; a seeded ``random.Random`` in tests.

    Raises:
        ValueError: The secret is malformed (the message does not contain it).
    """

    def __init__(
        self,
        secret: str,
        *,
        client: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Clock = time.time,
        rng: Rng | None = None,
    ) -> None:
        decode_secret(secret)  # fail at construction, not on the first anomaly
        super().__init__(client=client, policy=policy, sleep=sleep, clock=clock, rng=rng)
        self._secret = secret

    def __repr__(self) -> str:  # keeps the secret out of logs and tracebacks
        return f"{type(self).__name__}(policy={self.policy!r})"

    def send(self, url: str, command: ControlCommand, /) -> Delivery:
        """Sign and POST ``command`` to ``url``; the same webhook-id on every retry.

        Blocks; never raises. The URL is never logged nor put in the result.
        """
        body = command.to_body()
        msg_id = new_webhook_id()

        def headers() -> dict[str, str]:
            return signed_headers(self._secret, msg_id, body, timestamp=int(self._clock()))

        return self.post(url, body, headers, target="control", webhook_id=msg_id)
