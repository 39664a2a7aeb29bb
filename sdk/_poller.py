"""The pull fallback: the agent polls its control state, so it obeys even behind NAT."""

from __future__ import annotations

import json
import logging
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from agentwatch.sdk import semconv
from agentwatch.sdk._breaker import Breaker, BreakerState
from agentwatch.sdk._dispatch import Remediation, RemediationDispatcher

logger = logging.getLogger(__name__)

DEFAULT_JITTER = 0.2
DEFAULT_TIMEOUT_S = 5.0
_MAX_RESPONSE_BYTES = 64 * 1024

ApplyBreaker = Callable[[BreakerState, str, str], None]


class ControlPoller:
    """Polls ``GET {api_url}/api/v1/agents/{agent}/control`` and reconciles what it reads.

    The answer is ``{"agent", "breaker", "reason", "anomaly_id", "version", "rollback"}``, where
    ``version`` grows with every change the service makes and ``rollback`` is null or
    ``{"checkpoint_id", "webhook_id", "reason", "anomaly_id"}``. Reconciling is idempotent with
    the webhooks: the breaker state is applied when ``version`` differs from the last one
    applied (and not when the breaker changed locally while the request was in flight, since a
    webhook that raced the poll is newer); a pending rollback is handed to the dispatcher under
    its ``webhook_id``, which refuses one the webhook path already ran.

    Sends ``authorization: Bearer <token>`` when a token is given. A 404 (the service does not
    know the agent yet) and network errors are logged (first at WARNING, then DEBUG), never
    raised. Thread-safe; :meth:`poll_once` blocks up to ``timeout_s``.

    Args:
        agent_id: This agent's instance id.
        api_url: Base URL of the service API, e.g. ``http://127.0.0.1:8080``.
        breaker: The agent's breaker (read for its change generation).
        apply_breaker: Applies ``(state, reason, anomaly_id)``.
        dispatcher: Runs rollbacks, deduplicated by webhook-id.
        token: Bearer token, or None.
        interval_s: Mean seconds between polls.
        jitter: Each wait is ``interval_s`` times a uniform factor in ``1 ± jitter``.
        timeout_s: Per-request timeout.
        rng: Jitter source; seeded in tests.
    """

    def __init__(
        self,
        *,
        agent_id: str,
        api_url: str,
        breaker: Breaker,
        apply_breaker: ApplyBreaker,
        dispatcher: RemediationDispatcher,
        token: str | None = None,
        interval_s: float = 5.0,
        jitter: float = DEFAULT_JITTER,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        rng: random.Random | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
        self.agent_id = agent_id
        path = semconv.CONTROL_STATE_PATH.format(agent=urllib.parse.quote(agent_id, safe=""))
        self.url = api_url.rstrip("/") + path
        self.interval_s = interval_s
        self.jitter = jitter
        self.timeout_s = timeout_s
        self._breaker = breaker
        self._apply_breaker = apply_breaker
        self._dispatcher = dispatcher
        self._token = token
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._last_version: int | None = None
        self._failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}(agent_id={self.agent_id!r}, url={self.url!r})"

    @property
    def failures(self) -> int:
        """Polls that failed so far (network, HTTP status, malformed answer)."""
        with self._lock:
            return self._failures

    def start(self) -> None:
        """Start polling in a daemon thread; the first poll comes after one jittered interval."""
        self._thread = threading.Thread(target=self._run, name="agentwatch-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread; waits up to ``timeout_s`` for a poll in flight. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def poll_once(self) -> bool:
        """Fetch the control state once and reconcile. Never raises.

        Returns:
            True if a state was fetched and reconciled.
        """
        generation = self._breaker.generation
        try:
            state = self._fetch()
        except _PollError as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return False
        try:
            self._reconcile(state, generation)
        except (KeyError, TypeError, ValueError) as exc:
            self._failed(f"malformed control state: {exc!r}")
            return False
        return True

    def _fetch(self) -> dict[str, Any]:
        headers = {"accept": "application/json"}
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise _PollError("the service does not know this agent yet (404)") from None
            raise _PollError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise _PollError(f"unreachable: {exc}") from None
        if len(body) > _MAX_RESPONSE_BYTES:
            raise _PollError("control state too large")
        try:
            state = json.loads(body)
        except ValueError:
            raise _PollError("control state is not JSON") from None
        if not isinstance(state, dict):
            raise _PollError("control state is not a JSON object")
        return state

    def _reconcile(self, state: dict[str, Any], generation: int) -> None:
        breaker = BreakerState(str(state["breaker"]))
        version = int(state["version"])
        reason = str(state.get("reason") or "")
        anomaly_id = str(state.get("anomaly_id") or "")
        rollback = state.get("rollback")
        if rollback is not None and not isinstance(rollback, dict):
            raise TypeError("'rollback' must be null or an object")
        with self._lock:
            changed = version != self._last_version
        if changed and self._breaker.generation == generation:
            self._apply_breaker(breaker, reason, anomaly_id)
            with self._lock:
                self._last_version = version
        if rollback is not None:
            checkpoint_id = str(rollback["checkpoint_id"])
            webhook_id = str(rollback["webhook_id"])
            if not (checkpoint_id and webhook_id):
                raise ValueError("rollback needs 'checkpoint_id' and 'webhook_id'")
            if not self._dispatcher.has_handlers(semconv.CONTROL_TYPE_ROLLBACK):
                logger.debug("pending rollback %s: no handler registered", webhook_id)
                return
            self._dispatcher.submit(
                Remediation(
                    kind=semconv.CONTROL_TYPE_ROLLBACK,
                    webhook_id=webhook_id,
                    checkpoint_id=checkpoint_id,
                    reason=str(rollback.get("reason") or ""),
                    anomaly_id=str(rollback.get("anomaly_id") or ""),
                )
            )

    def _failed(self, why: str) -> None:
        with self._lock:
            self._failures += 1
            failures = self._failures
        level = logging.WARNING if failures == 1 else logging.DEBUG
        logger.log(level, "control poll failed (%d so far): %s", failures, why)

    def _run(self) -> None:
        while True:
            factor = 1 + self._rng.uniform(-self.jitter, self.jitter)
            if self._stop.wait(self.interval_s * factor):
                return
            self.poll_once()


class _PollError(Exception):
    pass
