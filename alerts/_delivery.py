"""One outbound POST with retries: the delivery core every receiver and control client shares.

Retries only what is worth retrying (429, 502, 503, 504 and transport errors), with exponential
backoff and jitter, honoring ``Retry-After``, within an overall deadline, and stops early when a
shutdown event is set. It returns a :class:`Delivery` and never raises, so it is safe on worker
threads.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Wall-clock seconds since the Unix epoch (``time.time``)."""
Sleep = Callable[[float], object]
"""Blocks for the given seconds (``time.sleep`` or ``threading.Event.wait``)."""
HeadersFactory = Callable[[], Mapping[str, str]]
"""Builds the headers of one attempt (a fresh timestamp and signature, the same webhook-id)."""

RETRYABLE_STATUS: frozenset[int] = frozenset({429, 502, 503, 504})


class Rng(Protocol):
    """The jitter source; ``random.Random`` satisfies it."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of delivering one message to one target.

    Attributes:
        target: What kind of target: ``"control"``, ``"slack"``, ...
        webhook_id: The message id (the same on every attempt); "" when none was made.
        attempts: How many HTTP attempts were made (0 when none could be).
        status_code: The last HTTP status received, or None when no response came back.
        ok: True when the target answered 2xx.
        error: Why it failed ("" when ok). Never contains the URL or a secret.
        started_ns: When delivery started, ns since the Unix epoch.
        finished_ns: When delivery finished, ns since the Unix epoch.
        agent: The agent the message was about ("" when not known to the sender).
        action: What was delivered: ``breaker:open``, ``notify``, ...
        anomaly_id: The anomaly that caused it ("" when none).
    """

    target: str
    webhook_id: str
    attempts: int
    status_code: int | None
    ok: bool
    error: str
    started_ns: int
    finished_ns: int
    agent: str = ""
    action: str = ""
    anomaly_id: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one delivery.

    The n-th retry waits ``min(max_backoff_s, initial_backoff_s * factor**(n-1))``, scaled by a
    uniform factor in ``[1 - jitter, 1 + jitter]``; a ``Retry-After`` header replaces that wait.
    No attempt starts after ``deadline_s`` from the first.

    Attributes:
        initial_backoff_s: Wait before the first retry.
        factor: Growth of the wait per retry (>= 1).
        max_backoff_s: Upper bound of one backoff wait.
        deadline_s: Overall budget of one delivery, retries included.
        jitter: Relative jitter in [0, 1).
        attempt_timeout_s: Timeout of one HTTP attempt (also capped by the remaining budget).
    """

    initial_backoff_s: float = 0.5
    factor: float = 1.5
    max_backoff_s: float = 30.0
    deadline_s: float = 60.0
    jitter: float = 0.2
    attempt_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _require(
            self.initial_backoff_s >= 0, "initial_backoff_s must be >= 0", self.initial_backoff_s
        )
        _require(self.factor >= 1, "factor must be >= 1", self.factor)
        _require(self.max_backoff_s >= 0, "max_backoff_s must be >= 0", self.max_backoff_s)
        _require(self.deadline_s > 0, "deadline_s must be > 0", self.deadline_s)
        _require(0 <= self.jitter < 1, "jitter must be in [0, 1)", self.jitter)
        _require(
            self.attempt_timeout_s > 0, "attempt_timeout_s must be > 0", self.attempt_timeout_s
        )

    def backoff_s(self, retry: int, rng: Rng) -> float:
        """Return the jittered wait before retry number ``retry`` (1-based)."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.factor ** (retry - 1))
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


def _require(ok: bool, message: str, value: float) -> None:
    # NaN fails every comparison, so it is rejected here too.
    if not ok or math.isnan(value):
        raise ValueError(f"{message}, got {value!r}")


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds, or None when absent/invalid.

    Accepts delay-seconds and HTTP-date forms; a date in the past means 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now_s)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _redact(text: str, url: str) -> str:
    return text.replace(url, "<url>") if url else text


def post_with_retry(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers_factory: HeadersFactory,
    *,
    target: str,
    webhook_id: str = "",
    policy: RetryPolicy,
    sleep: Sleep,
    clock: Clock,
    rng: Rng,
    shutdown: threading.Event,
) -> Delivery:
    """POST ``body`` to ``url`` until it succeeds, fails for good, runs out of time or shuts down.

    Blocks the calling thread for up to ``policy.deadline_s`` (plus one attempt's timeout). Never
    raises: every failure comes back as a :class:`Delivery` with ``ok=False``. Thread-safe when
    ``client`` is (``httpx.Client`` is).

    Args:
        client: The HTTP client (its timeouts are overridden per attempt).
        url: The target URL; never logged.
        body: The exact request body.
        headers_factory: Called before each attempt; keep the webhook-id stable across calls.
        target: The target kind recorded in the result.
        webhook_id: The message id recorded in the result.
        policy: Backoff, deadline and timeouts.
        sleep: Waits between attempts; waiting on ``shutdown`` makes shutdown interrupt it.
        clock: Wall-clock seconds.
        rng: Jitter source.
        shutdown: When set, no further attempt is made (the first attempt is always made).
    """
    started = clock()
    deadline = started + policy.deadline_s
    attempts = 0
    status: int | None = None
    error = ""

    def result(ok: bool, why: str) -> Delivery:
        return Delivery(
            target=target,
            webhook_id=webhook_id,
            attempts=attempts,
            status_code=status,
            ok=ok,
            error=why,
            started_ns=int(started * 1e9),
            finished_ns=int(clock() * 1e9),
        )

    while True:
        attempts += 1
        retry_after: float | None = None
        try:
            headers = dict(headers_factory())
            timeout = max(0.001, min(policy.attempt_timeout_s, deadline - clock()))
            response = client.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.UnsupportedProtocol as exc:
            return result(False, _redact(f"{type(exc).__name__}: {exc}", url))
        except httpx.TransportError as exc:
            status = None
            error = _redact(f"{type(exc).__name__}: {exc}", url)
        except Exception as exc:  # a bad URL or a broken headers factory must not kill a worker
            return result(False, _redact(f"{type(exc).__name__}: {exc}", url))
        else:
            status = response.status_code
            if response.is_success:
                return result(True, "")
            error = f"HTTP {status}"
            if status not in RETRYABLE_STATUS:
                return result(False, error)
            retry_after = parse_retry_after(response.headers.get("retry-after"), clock())

        if shutdown.is_set():
            return result(False, f"{error}; shutting down")
        wait = retry_after if retry_after is not None else policy.backoff_s(attempts, rng)
        if wait >= deadline - clock():
            # The next attempt would start past the deadline (or before the server's Retry-After).
            return result(False, f"{error}; deadline {policy.deadline_s:g}s exhausted")
        logger.debug(
            "%s delivery %s attempt %d failed (%s); retrying in %.2fs",
            target,
            webhook_id,
            attempts,
            error,
            wait,
        )
        sleep(wait)
        if shutdown.is_set():
            return result(False, f"{error}; shutting down")


class RetryingPoster:
    """What every outbound sender shares: an HTTP client (closed by :meth:`close` when made
    here), a retry policy, a shutdown event that also cuts backoff waits short, and injectable
    sleep, clock and jitter for tests.

    Thread-safe. :meth:`post` blocks until delivered, refused or out of time; never raises.
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Clock = time.time,
        rng: Rng | None = None,
    ) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client()
        self.policy = policy if policy is not None else RetryPolicy()
        self._shutdown = threading.Event()
        self._sleep: Sleep = sleep if sleep is not None else self._shutdown.wait
        self._clock = clock
        self._rng: Rng = rng if rng is not None else random.Random()

    def post(
        self,
        url: str,
        body: bytes,
        headers: HeadersFactory,
        *,
        target: str,
        webhook_id: str,
    ) -> Delivery:
        """``post_with_retry`` with this sender's client, policy, clock and shutdown."""
        return post_with_retry(
            self._client,
            url,
            body,
            headers,
            target=target,
            webhook_id=webhook_id,
            policy=self.policy,
            sleep=self._sleep,
            clock=self._clock,
            rng=self._rng,
            shutdown=self._shutdown,
        )

    def shutdown(self) -> None:
        """Stop retrying in-flight sends. Idempotent, non-blocking."""
        self._shutdown.set()

    def close(self) -> None:
        """Shut down and close the HTTP client if this instance made it. Idempotent."""
        self.shutdown()
        if self._owns_client:
            self._client.close()
