"""Circuit-breaker state of one agent: the guard that blocks its next action."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

from agentwatch.sdk import semconv

logger = logging.getLogger(__name__)

BreakerListener = Callable[["BreakerState", str, str], None]
"""Called as ``listener(state, reason, anomaly_id)`` after every breaker state change."""


class BreakerState(enum.StrEnum):
    """States of an agent's circuit breaker; the values are the wire values of control webhooks.

    ``OPEN`` and ``FORCED_OPEN`` (a manual kill switch) block actions; ``HALF_OPEN`` lets probe
    actions through until the service closes the breaker again.
    """

    CLOSED = semconv.BREAKER_CLOSED
    OPEN = semconv.BREAKER_OPEN
    HALF_OPEN = semconv.BREAKER_HALF_OPEN
    FORCED_OPEN = semconv.BREAKER_FORCED_OPEN

    @property
    def blocks_actions(self) -> bool:
        """Whether an agent in this state must refuse its next action."""
        return self in (BreakerState.OPEN, BreakerState.FORCED_OPEN)


class Breaker:
    """The breaker state of one agent, with change listeners.

    Thread-safe; never blocks beyond a short internal lock. Listeners run in the thread that
    changed the state (for control webhooks: a receiver thread), outside the lock; an exception
    from a listener is logged, never propagated.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._reason = ""
        self._anomaly_id = ""
        self._listeners: list[BreakerListener] = []

    def snapshot(self) -> tuple[BreakerState, str, str]:
        """Return ``(state, reason, anomaly_id)`` read atomically."""
        with self._lock:
            return self._state, self._reason, self._anomaly_id

    @property
    def state(self) -> BreakerState:
        """The current state."""
        with self._lock:
            return self._state

    def set(self, state: BreakerState | str, *, reason: str = "", anomaly_id: str = "") -> bool:
        """Set the state, keeping ``reason`` and ``anomaly_id``; notify listeners on a change.

        Args:
            state: A :class:`BreakerState` or its wire value (``"open"``, ...).
            reason: Why, as given by the caller.
            anomaly_id: The anomaly behind the change, if any.

        Returns:
            True if the state changed.

        Raises:
            ValueError: ``state`` is not a breaker state.
        """
        new_state = BreakerState(state)
        with self._lock:
            changed = new_state is not self._state
            self._state = new_state
            self._reason = reason
            self._anomaly_id = anomaly_id
            listeners = list(self._listeners) if changed else []
        for listener in listeners:
            try:
                listener(new_state, reason, anomaly_id)
            except Exception:
                logger.exception("breaker listener %r failed", listener)
        return changed

    def add_listener(self, listener: BreakerListener) -> None:
        """Register ``listener`` for every future state change."""
        with self._lock:
            self._listeners.append(listener)
