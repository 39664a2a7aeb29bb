"""Exception tree of the SDK, rooted at :class:`AgentwatchError`.

The SDK never raises into the agent except by design: :class:`CircuitOpenError` is the one
exception an agent sees at run time, when its breaker blocks an action.
"""

from __future__ import annotations

from agentwatch.sdk._breaker import BreakerState


class AgentwatchError(Exception):
    """Root of every exception agentwatch raises on purpose."""


class CircuitOpenError(AgentwatchError):
    """An action was refused because the agent's circuit breaker is open.

    Raised by :meth:`agentwatch.sdk.Agent.action` before any span is started, while the breaker
    is ``OPEN`` or ``FORCED_OPEN``.

    Attributes:
        agent: The instance id (``service.instance.id``) of the blocked agent.
        state: The breaker state that blocked the action.
        reason: Why the breaker was opened, as sent by the service ("" if unknown).
        anomaly_id: The anomaly that opened the breaker ("" if none).
    """

    def __init__(
        self, agent: str, state: BreakerState, reason: str = "", anomaly_id: str = ""
    ) -> None:
        # Positional args so the exception survives pickling (multiprocessing, task queues).
        super().__init__(agent, state, reason, anomaly_id)
        self.agent = agent
        self.state = state
        self.reason = reason
        self.anomaly_id = anomaly_id

    def __str__(self) -> str:
        text = f"circuit breaker of agent {self.agent!r} is {self.state.value}"
        if self.reason:
            text += f": {self.reason}"
        if self.anomaly_id:
            text += f" (anomaly {self.anomaly_id})"
        return text


class WebhookVerificationError(AgentwatchError):
    """A control webhook failed Standard Webhooks verification.

    Attributes:
        reason: A short, secret-free description (e.g. ``"signature mismatch"``), safe to log
            and to return to the sender.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
