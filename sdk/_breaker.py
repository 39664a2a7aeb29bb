"""Circuit-breaker state of one agent: the guard that blocks its next action."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import time
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


class BreakerMode(enum.StrEnum):
    """What the guard does with an action while the breaker blocks actions."""

    RAISE = "raise"
    """Raise :class:`CircuitOpenError` at once."""
    PAUSE = "pause"
    """Block until the breaker lets actions through again, or a timeout passes, then raise."""


class Breaker:
    """The breaker state of one agent, with change listeners.

    Thread-safe; never blocks beyond a short internal lock, except :meth:`wait_until_allowed`
    and :meth:`async_wait_until_allowed`, which wait on purpose. Listeners run in the thread that
    changed the state (for control webhooks: a receiver thread), outside the lock; an exception
    from a listener is logged, never propagated.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = BreakerState.CLOSED
        self._reason = ""
        self._anomaly_id = ""
        self._generation = 0
        self._listeners: list[BreakerListener] = []
        # Replaced whole under the lock, read without it: one attribute read is atomic, and
        # every action reads it.
        self._snapshot: tuple[BreakerState, str, str] = (BreakerState.CLOSED, "", "")
        self.blocks_actions = False
        """Whether the state blocks actions now; set under the lock, read without it."""

    @property
    def generation(self) -> int:
        """How many times the state changed; lets a reader detect a change it raced with."""
        with self._lock:
            return self._generation

    def snapshot(self) -> tuple[BreakerState, str, str]:
        """Return ``(state, reason, anomaly_id)`` read atomically, without locking."""
        return self._snapshot

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
            self._snapshot = (new_state, reason, anomaly_id)
            self.blocks_actions = new_state.blocks_actions
            if changed:
                self._generation += 1
                self._changed.notify_all()
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

    def remove_listener(self, listener: BreakerListener) -> None:
        """Unregister ``listener``; no effect if it is not registered."""
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def wait_until_allowed(self, timeout_s: float) -> tuple[BreakerState, str, str]:
        """Block until the state lets actions through, or ``timeout_s`` passes.

        Returns:
            The snapshot (state, reason, anomaly_id) at return; its state still blocks actions
            when the timeout passed.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._state.blocks_actions:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._state, self._reason, self._anomaly_id

    async def async_wait_until_allowed(self, timeout_s: float) -> tuple[BreakerState, str, str]:
        """Like :meth:`wait_until_allowed`, without blocking the event loop; cancellable."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake(state: BreakerState, reason: str, anomaly_id: str) -> None:
            loop.call_soon_threadsafe(changed.set)

        self.add_listener(wake)  # before the first check, so no change is missed
        try:
            deadline = loop.time() + timeout_s
            while True:
                changed.clear()  # before reading, so a change after the read wakes us
                snapshot = self.snapshot()
                remaining = deadline - loop.time()
                if not snapshot[0].blocks_actions or remaining <= 0:
                    return snapshot
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self.remove_listener(wake)
