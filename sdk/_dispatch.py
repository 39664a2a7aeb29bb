"""Runs the agent's rollback and failover handlers, at most once per webhook-id."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import inspect
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from agentwatch.sdk import semconv

logger = logging.getLogger(__name__)

RollbackHandler = Callable[[str], Any]
"""Called as ``handler(checkpoint_id)``; may be a coroutine function."""
FailoverHandler = Callable[[str, str], Any]
"""Called as ``handler(failed_agent, checkpoint_id)`` on a standby; may be a coroutine function."""

DEFAULT_MAX_REMEMBERED_IDS = 10_000


@dataclasses.dataclass(frozen=True)
class Remediation:
    """One rollback or failover to run.

    Attributes:
        kind: ``"rollback"`` or ``"failover"``.
        webhook_id: The idempotency key (the webhook-id, also named in the pull state).
        checkpoint_id: The checkpoint to resume from ("" if the service knows none, failover).
        failed_agent: The agent whose work a standby takes over (failover only).
        reason: Why, as sent by the service.
        anomaly_id: The anomaly behind it, if any.
    """

    kind: str
    webhook_id: str
    checkpoint_id: str
    failed_agent: str = ""
    reason: str = ""
    anomaly_id: str = ""


class RemediationDispatcher:
    """Queues rollbacks and failovers and runs their handlers in one worker thread, in order.

    Every remediation is keyed by its webhook-id: a second submission of the same id (a webhook
    retry, or the pull fallback seeing a rollback the webhook already brought) is refused, so a
    handler runs at most once per id. Handlers run outside the receiver's request, so a slow
    resume never makes the service retry; their exceptions are logged, never propagated.
    A coroutine handler is run to completion with :func:`asyncio.run` in the worker thread.

    Thread-safe. :meth:`submit` never blocks; :meth:`wait_idle` blocks up to its timeout.

    Args:
        max_remembered_ids: How many webhook-ids are remembered (oldest forgotten first).
    """

    def __init__(self, *, max_remembered_ids: int = DEFAULT_MAX_REMEMBERED_IDS) -> None:
        self.max_remembered_ids = max_remembered_ids
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._rollback_handlers: list[RollbackHandler] = []
        self._failover_handlers: list[FailoverHandler] = []
        self._pending = 0
        self._failures = 0
        self._queue: queue.SimpleQueue[Remediation | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def failures(self) -> int:
        """Handler calls that raised so far."""
        with self._lock:
            return self._failures

    def add_rollback_handler(self, handler: RollbackHandler) -> None:
        """Register a rollback handler; all registered handlers run, in order."""
        with self._lock:
            self._rollback_handlers.append(handler)

    def add_failover_handler(self, handler: FailoverHandler) -> None:
        """Register a failover handler; all registered handlers run, in order."""
        with self._lock:
            self._failover_handlers.append(handler)

    def has_handlers(self, kind: str) -> bool:
        """Whether any handler of ``kind`` (``"rollback"``, ``"failover"``) is registered."""
        with self._lock:
            handlers = (
                self._rollback_handlers
                if kind == semconv.CONTROL_TYPE_ROLLBACK
                else self._failover_handlers
            )
            return bool(handlers)

    def seen(self, webhook_id: str) -> bool:
        """Whether a remediation with ``webhook_id`` was already accepted."""
        with self._lock:
            return webhook_id in self._seen

    def submit(self, remediation: Remediation) -> bool:
        """Queue ``remediation`` unless its webhook-id was accepted before. Never blocks.

        Returns:
            True if queued; False for a duplicate or after :meth:`shutdown`.
        """
        with self._lock:
            if self._closed or remediation.webhook_id in self._seen:
                return False
            self._seen[remediation.webhook_id] = None
            while len(self._seen) > self.max_remembered_ids:
                self._seen.popitem(last=False)
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agentwatch-remediation", daemon=True
                )
                self._thread.start()
        self._queue.put(remediation)
        return True

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every queued remediation ran, or ``timeout_s`` passed.

        Returns:
            True if nothing is pending.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Refuse new work, let the queued finish (up to ``timeout_s``), stop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            remediation = self._queue.get()
            if remediation is None:
                return
            try:
                self._execute(remediation)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _execute(self, remediation: Remediation) -> None:
        with self._lock:
            rollbacks = list(self._rollback_handlers)
            failovers = list(self._failover_handlers)
        calls: list[Callable[[], Any]] = []
        if remediation.kind == semconv.CONTROL_TYPE_ROLLBACK:
            calls = [_bind(h, remediation.checkpoint_id) for h in rollbacks]
        else:
            calls = [
                _bind(h, remediation.failed_agent, remediation.checkpoint_id) for h in failovers
            ]
        if not calls:
            logger.warning("%s %s: no handler registered", remediation.kind, remediation.webhook_id)
        for call in calls:
            try:
                result = call()
                if inspect.isawaitable(result):
                    asyncio.run(_awaited(result))
            except Exception:
                with self._lock:
                    self._failures += 1
                logger.exception(
                    "%s handler failed (webhook %s)", remediation.kind, remediation.webhook_id
                )
            else:
                logger.info(
                    "%s to checkpoint %r ran (webhook %s)",
                    remediation.kind,
                    remediation.checkpoint_id,
                    remediation.webhook_id,
                )


def _bind(handler: Callable[..., Any], *args: str) -> Callable[[], Any]:
    return lambda: handler(*args)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
