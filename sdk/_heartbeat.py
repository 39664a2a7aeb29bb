"""The heartbeat: a daemon thread that tells the service the agent is alive, and how it fares."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from opentelemetry import context, trace

from agentwatch.sdk import semconv

logger = logging.getLogger(__name__)

STATUS_RUNNING = semconv.STATUS_RUNNING


class ErrorCounter:
    """Counts action errors between two heartbeats. Thread-safe, non-blocking."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, n: int = 1) -> None:
        """Count ``n`` more errors."""
        with self._lock:
            self._count += n

    def take(self) -> int:
        """Return the errors counted since the last call, and reset."""
        with self._lock:
            count, self._count = self._count, 0
            return count


def memory_usage_bytes() -> int | None:
    """Return the resident set size of this process in bytes, or None when unknown.

    Reads ``/proc/self/statm`` (Linux); elsewhere falls back to ``getrusage``'s peak RSS.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except (ImportError, OSError):
        return None


class Heartbeat:
    """Emits ``agentwatch.heartbeat`` spans: one at :meth:`start`, then every ``interval_s``.

    The first beat is emitted synchronously by :meth:`start` (so an agent registers, with its
    control URL, before its first action); later beats come from a daemon thread that waits on
    an event between beats, so :meth:`stop` returns promptly. A failing beat is logged (the
    first time at WARNING, then at DEBUG) and counted in :attr:`failures`; it never raises.

    Thread-safe.

    Args:
        tracer: The agent's tracer.
        interval_s: Seconds between beats (> 0).
        errors: The action error counter, drained at each beat.
        control_url: Sent as ``agentwatch.control.url`` when not None.
        wall_clock: Monotonic seconds; injectable for tests.
        cpu_clock: Process CPU seconds (all threads); injectable for tests.
        memory: Resident memory in bytes, or None; injectable for tests.
        status: The agent's status now (``running``, ``idle``, ``paused``); read at each beat.
        admit: Asked before each periodic beat; False skips it (the span pipeline is
            shedding heartbeats), keeping the error count for the next beat.
    """

    def __init__(
        self,
        *,
        tracer: trace.Tracer,
        interval_s: float,
        errors: ErrorCounter,
        control_url: str | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        memory: Callable[[], int | None] = memory_usage_bytes,
        status: Callable[[], str] = lambda: STATUS_RUNNING,
        admit: Callable[[], bool] = lambda: True,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self._tracer = tracer
        self._errors = errors
        self._control_url = control_url
        self._wall_clock = wall_clock
        self._cpu_clock = cpu_clock
        self._memory = memory
        self._status = status
        self._admit = admit
        self._cpus = os.cpu_count() or 1
        self._lock = threading.Lock()
        self._seq = 0
        self._last_wall = wall_clock()
        self._last_cpu = cpu_clock()
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Emit the first beat now, then start the beating thread. Call once."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="agentwatch-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait up to ``timeout_s`` for it. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def beat(self) -> None:
        """Emit one heartbeat span now. Never raises."""
        try:
            with self._lock:
                seq = self._seq
                self._seq += 1
                wall, cpu = self._wall_clock(), self._cpu_clock()
                wall_delta, cpu_delta = wall - self._last_wall, cpu - self._last_cpu
                self._last_wall, self._last_cpu = wall, cpu
            utilization = cpu_delta / wall_delta / self._cpus if wall_delta > 0 else 0.0
            attributes: dict[str, str | int | float] = {
                semconv.SIGNAL: semconv.SIGNAL_HEALTH,
                semconv.HEARTBEAT_SEQ: seq,
                semconv.HEARTBEAT_INTERVAL_S: self.interval_s,
                semconv.AGENT_STATUS: self._status(),
                semconv.PROCESS_CPU_UTILIZATION: max(0.0, utilization),
                semconv.ERRORS: self._errors.take(),
            }
            memory = self._memory()
            if memory is not None:
                attributes[semconv.PROCESS_MEMORY_USAGE] = memory
            if self._control_url is not None:
                attributes[semconv.CONTROL_URL] = self._control_url
            # An empty context: a heartbeat is a root span even if start() runs inside a span.
            span = self._tracer.start_span(
                semconv.SPAN_HEARTBEAT,
                context=context.Context(),
                kind=trace.SpanKind.INTERNAL,
                attributes=attributes,
            )
            span.end()
        except Exception:
            with self._lock:
                self.failures += 1
                failures = self.failures
            level = logging.WARNING if failures == 1 else logging.DEBUG
            logger.log(level, "heartbeat failed (%d so far)", failures, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                admitted = self._admit()
            except Exception:
                admitted = True
            if admitted:
                self.beat()
