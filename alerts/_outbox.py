"""The durable outbox: every outbound message is on disk before its first attempt.

SQLite in WAL mode with ``synchronous=FULL``: a committed message survives ``kill -9`` and power
loss; a message whose attempt was cut short by a crash is sent again after restart under the same
``webhook-id`` (at-least-once; receivers deduplicate by id). Enqueueing an id already present is a
no-op, so a decision replayed after a crash is not sent twice. The table and its statements live in
``_outbox_store``; this module is the delivery: claiming, attempts, breakers and worker threads.

Retries: 408, 429, 5xx and transport errors, after ``Retry-After`` when given, else a backoff from
0.5 s growing 1.5x with jitter, capped; other statuses fail for good. Messages to one destination go
out one at a time, in order; a breaker per destination stops trying a dead receiver for a cool-down
so it never holds up the others, and control commands are always picked before notifications.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from agentwatch.sdk.semconv import WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER

from ._delivery import Clock, Delivery, RetryPolicy, Rng, parse_retry_after
from ._notification import OutboundMessage
from ._outbox_store import STATE_DELIVERED, STATE_FAILED, STATE_PENDING, OutboxRow, OutboxStore
from ._signing import signed_headers

__all__ = [
    "FAIL",
    "OK",
    "RETRY",
    "STATE_DELIVERED",
    "STATE_FAILED",
    "STATE_PENDING",
    "Outbox",
    "classify",
]

logger = logging.getLogger(__name__)

OK: Final = "ok"
RETRY: Final = "retry"
FAIL: Final = "fail"

# Transient answers only. 501 (Not Implemented, e.g. an agent with no rollback handler) and 505
# will not change on a retry, so they fail like other refusals.
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


def classify(status_code: int | None) -> str:
    """``"ok"`` for 2xx; ``"retry"`` for 408, 429, 500, 502, 503, 504 and no response; else
    ``"fail"``."""
    if status_code is None:
        return RETRY
    if 200 <= status_code < 300:
        return OK
    return RETRY if status_code in _RETRYABLE else FAIL


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    open_until_s: float = 0.0
    last_sent_s: float = float("-inf")


class Outbox:
    """Durable, at-least-once delivery of signed POSTs, driven by :meth:`drain` or worker threads.

    Thread-safe. ``enqueue`` blocks on one fsync'd commit (about a millisecond on SSD); ``drain``
    blocks on the HTTP attempts it makes.

    Args:
        path: The SQLite file; None keeps the outbox in memory (tests, no durability).
        secret: Standard Webhooks secret; every request is signed with it. None sends the
            ``webhook-id`` and ``webhook-timestamp`` headers unsigned.
        client: HTTP client; by default one is made and closed by :meth:`close`.
        policy: Backoff (``initial_backoff_s``, ``factor``, ``max_backoff_s``, ``jitter``) and
            ``attempt_timeout_s``.
        max_age_s: A message still undelivered this long after it was enqueued fails for good.
        breaker_failures: Consecutive retryable failures that open a destination's breaker.
        breaker_cooldown_s: How long an open breaker waits before one probe attempt.
        clock: Wall-clock seconds (virtual in tests).
        rng: Jitter source.
        on_delivery: Called with every attempt's :class:`Delivery` (must be quick, must not raise).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        secret: str | None = None,
        client: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        max_age_s: float = 24 * 3600.0,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 30.0,
        clock: Clock = time.time,
        rng: Rng | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        if secret is not None:
            signed_headers(secret, "msg_check", b"", timestamp=0)  # fail now on a bad secret
        if breaker_failures < 1:
            raise ValueError(f"breaker_failures must be >= 1, got {breaker_failures}")
        self._secret = secret
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client()
        self.policy = policy if policy is not None else RetryPolicy()
        self.max_age_s = max_age_s
        self.breaker_failures = breaker_failures
        self.breaker_cooldown_s = breaker_cooldown_s
        self._clock = clock
        self._rng: Rng = rng if rng is not None else random.Random()
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._store = OutboxStore(path)  # guarded by _lock
        self._breakers: dict[str, _Breaker] = {}
        self._in_flight: set[str] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(signed={self._secret is not None})"

    # --- intake ------------------------------------------------------------------------------

    def enqueue(self, message: OutboundMessage) -> bool:
        """Store ``message`` durably; True when new, False when its webhook-id is already stored."""
        now = self._clock()
        with self._lock:
            added = self._store.insert(message, now)
            self._wake.notify_all()
        return added

    # --- delivery ----------------------------------------------------------------------------

    def _claim(self, now: float) -> OutboxRow | None:
        for row in self._store.heads():
            breaker = self._breakers.setdefault(row.destination, _Breaker())
            if (
                row.destination in self._in_flight
                or row.next_attempt_s > now
                or breaker.open_until_s > now
                or breaker.last_sent_s + row.min_interval_s > now
            ):
                continue
            self._in_flight.add(row.destination)
            return row
        return None

    def _next_due(self, now: float) -> float | None:
        due: list[float] = []
        for destination, next_attempt, interval in self._store.due_by_destination():
            breaker = self._breakers.get(destination, _Breaker())
            due.append(max(next_attempt, breaker.open_until_s, breaker.last_sent_s + interval))
        return min(due, default=None)

    def next_due_s(self) -> float | None:
        """When the next attempt may start (wall seconds), or None when nothing is pending."""
        with self._lock:
            return self._next_due(self._clock())

    def drain(self, *, max_attempts: int | None = None) -> list[Delivery]:
        """Make one attempt for every message due now, on the calling thread; return them.

        For tests and tools on virtual time: advance the clock to :meth:`next_due_s`, drain, repeat.
        """
        done: list[Delivery] = []
        while max_attempts is None or len(done) < max_attempts:
            with self._lock:
                row = self._claim(self._clock())
            if row is None:
                return done
            done.append(self._attempt(row))
        return done

    def _attempt(self, row: OutboxRow) -> Delivery:
        started = self._clock()
        status: int | None = None
        retry_after: float | None = None
        error = ""
        try:
            timestamp = int(started)
            if self._secret is not None:
                headers = signed_headers(
                    self._secret, row.webhook_id, row.body, timestamp=timestamp
                )
            else:
                headers = {
                    WEBHOOK_ID_HEADER: row.webhook_id,
                    WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
                    "content-type": "application/json",
                }
            response = self._client.post(
                row.url, content=row.body, headers=headers, timeout=self.policy.attempt_timeout_s
            )
            status = response.status_code
            if not response.is_success:
                error = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        except httpx.TransportError as exc:
            error = type(exc).__name__ + (f": {exc}".replace(row.url, "<url>"))
        except Exception as exc:  # a bad URL must not kill a worker; it fails for good
            error = type(exc).__name__
            status = -1
        verdict = FAIL if status == -1 else classify(status)
        if status == -1:
            status = None
        finished = self._clock()
        attempts = row.attempts + 1
        with self._lock:
            self._in_flight.discard(row.destination)
            breaker = self._breakers.setdefault(row.destination, _Breaker())
            breaker.last_sent_s = finished
            if verdict == RETRY and status != 429:
                breaker.failures += 1
                if breaker.failures >= self.breaker_failures:
                    breaker.open_until_s = finished + self.breaker_cooldown_s
            elif verdict == OK:
                breaker.failures, breaker.open_until_s = 0, 0.0
            if verdict == RETRY and finished - row.created_s >= self.max_age_s:
                verdict, error = FAIL, f"{error}; gave up after {self.max_age_s:g}s"
            if verdict == RETRY:
                wait = (
                    retry_after
                    if retry_after is not None
                    else self.policy.backoff_s(attempts, self._rng)
                )
                self._store.reschedule(
                    row.seq,
                    attempts=attempts,
                    next_attempt_s=finished + wait,
                    status=status,
                    error=error,
                )
            else:
                self._store.finish(
                    row.seq,
                    attempts=attempts,
                    state=STATE_DELIVERED if verdict == OK else STATE_FAILED,
                    status=status,
                    error=error,
                    finished_s=finished,
                )
            self._wake.notify_all()
        if verdict == FAIL:
            logger.warning(
                "%s delivery %s failed for good after %d attempts: %s",
                row.target,
                row.webhook_id,
                attempts,
                error,
            )
        delivery = Delivery(
            target=row.target,
            webhook_id=row.webhook_id,
            attempts=attempts,
            status_code=status,
            ok=verdict == OK,
            error=error,
            started_ns=int(started * 1e9),
            finished_ns=int(finished * 1e9),
            agent=row.agent,
            action=row.action,
            anomaly_id=row.anomaly_id,
        )
        if self._on_delivery is not None:
            try:
                self._on_delivery(delivery)
            except Exception:
                logger.exception("on_delivery callback failed")
        return delivery

    # --- reads -------------------------------------------------------------------------------

    def pending(self) -> int:
        """How many messages are not yet delivered nor failed."""
        with self._lock:
            return self._store.count_pending()

    def messages(self, state: str | None = None) -> list[dict[str, Any]]:
        """Stored messages (without URL and body), oldest first, for the API and tests."""
        with self._lock:
            return self._store.messages(state)

    def prune(self, retention_s: float = 7 * 24 * 3600.0) -> int:
        """Delete delivered and failed messages finished more than ``retention_s`` ago.

        Pending messages are never pruned. Keep the retention well above ``max_age_s`` and any
        restart or replay window: a stored webhook-id is what makes a replayed decision a
        duplicate. Returns the number of rows deleted.
        """
        if retention_s < self.max_age_s:
            raise ValueError(
                f"retention_s must be >= max_age_s ({self.max_age_s}), got {retention_s}"
            )
        cutoff = self._clock() - retention_s
        with self._lock:
            return self._store.delete_finished_before(cutoff)

    def breaker_open(self, destination: str) -> bool:
        """True while ``destination``'s breaker holds its messages back."""
        with self._lock:
            breaker = self._breakers.get(destination)
            return breaker is not None and breaker.open_until_s > self._clock()

    # --- threads -----------------------------------------------------------------------------

    def start(self, workers: int = 4) -> None:
        """Start ``workers`` daemon threads that send due messages with the wall clock."""
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._work, name=f"agentwatch-outbox-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                now = self._clock()
                row = self._claim(now)
                if row is None:
                    due = self._next_due(now)
                    wait = 1.0 if due is None else min(1.0, max(0.005, due - now))
                    self._wake.wait(wait)
                    continue
            self._attempt(row)

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Block until nothing is pending (with worker threads running); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                count = self._store.count_pending()
                left = deadline - time.monotonic()
                if not count:
                    return True
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.05))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop the workers (pending messages stay on disk for the next start). Idempotent."""
        self._stop.set()
        with self._lock:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Shut down, close the database and the HTTP client if this instance made it."""
        self.shutdown()
        with self._lock:
            self._store.close()
        if self._owns_client:
            self._client.close()
