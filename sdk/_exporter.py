"""A span exporter wrapper that turns export failures into counts and one log line."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class GuardedSpanExporter(SpanExporter):
    """Wraps an exporter so its failures never propagate, and counts the spans they drop.

    The first failure is logged at WARNING, later ones at DEBUG, so an unreachable service
    does not flood the agent's log. Thread-safe; blocks as long as the wrapped exporter.

    Within :meth:`deadline`, once the deadline has passed and the last export failed, batches
    are dropped without calling the wrapped exporter. OpenTelemetry's batch processor ignores
    the timeout of ``force_flush`` and exports until its queue is empty (upstream issue
    opentelemetry-python#4568); against an unreachable collector, with the heartbeat still
    queueing spans, that would never end.

    Args:
        exporter: The exporter doing the work (OTLP/HTTP in production).
        clock: Monotonic seconds; injectable for tests.
    """

    def __init__(
        self, exporter: SpanExporter, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.exporter = exporter
        self._clock = clock
        self._lock = threading.Lock()
        self._dropped_spans = 0
        self._failures = 0
        self._last_failed = False
        self._deadline: float | None = None

    @property
    def dropped_spans(self) -> int:
        """Spans that failed to export so far."""
        with self._lock:
            return self._dropped_spans

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export ``spans``; on failure count them and return ``FAILURE``. Never raises."""
        with self._lock:
            give_up = (
                self._last_failed and self._deadline is not None and self._clock() >= self._deadline
            )
        if give_up:
            self._failed(len(spans), exc_info=False)
            return SpanExportResult.FAILURE
        try:
            result = self.exporter.export(spans)
        except Exception:
            self._failed(len(spans), exc_info=True)
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._failed(len(spans), exc_info=False)
        else:
            with self._lock:
                self._last_failed = False
        return result

    @contextlib.contextmanager
    def deadline(self, timeout_s: float) -> Iterator[None]:
        """Within the block, give up on a failing exporter after ``timeout_s`` seconds.

        Yields at once; meant to wrap a blocking flush or shutdown. Nested or concurrent
        blocks restore the previous deadline on exit.
        """
        with self._lock:
            previous = self._deadline
            self._deadline = self._clock() + timeout_s
        try:
            yield
        finally:
            with self._lock:
                self._deadline = previous

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter. Never raises."""
        try:
            return self.exporter.force_flush(timeout_millis)
        except Exception:
            logger.debug("span exporter force_flush failed", exc_info=True)
            return False

    def shutdown(self) -> None:
        """Shut down the wrapped exporter. Never raises."""
        try:
            self.exporter.shutdown()
        except Exception:
            logger.debug("span exporter shutdown failed", exc_info=True)

    def _failed(self, n_spans: int, *, exc_info: bool) -> None:
        with self._lock:
            self._last_failed = True
            self._dropped_spans += n_spans
            self._failures += 1
            failures = self._failures
        level = logging.WARNING if failures == 1 else logging.DEBUG
        logger.log(
            level,
            "span export failed, %d spans dropped (failure %d; later ones logged at DEBUG)",
            n_spans,
            failures,
            exc_info=exc_info,
        )
