"""The handle of one instrumented agent: actions, breaker guard, heartbeat, lifecycle."""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from agentwatch.sdk import semconv
from agentwatch.sdk._breaker import Breaker, BreakerListener, BreakerState
from agentwatch.sdk._control import ControlReceiver
from agentwatch.sdk._errors import CircuitOpenError
from agentwatch.sdk._exporter import GuardedSpanExporter
from agentwatch.sdk._fingerprint import fingerprint
from agentwatch.sdk._heartbeat import ErrorCounter, Heartbeat
from agentwatch.sdk._webhooks import WebhookVerifier

logger = logging.getLogger(__name__)

_TRACER_NAME = "agentwatch.sdk"


def error_type(exc: BaseException) -> str:
    """Return the ``error.type`` of an exception: its class's fully qualified name."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class Agent:
    """The handle of one instrumented agent instance; create it with :func:`agentwatch.sdk.init`.

    Owns its own ``TracerProvider`` (never the global one, so many agents can share a process),
    its heartbeat thread and, when a webhook secret is configured, its control receiver.

    Thread-safe: every method may be called from any thread. Only :meth:`action` raises into the
    agent at run time, and only :class:`CircuitOpenError`, by design.
    """

    def __init__(
        self,
        *,
        service_name: str,
        instance_id: str,
        provider: TracerProvider,
        exporter: GuardedSpanExporter,
        heartbeat_interval_s: float,
        verifier: WebhookVerifier | None = None,
        control_host: str = "127.0.0.1",
        control_port: int = 0,
    ) -> None:
        """Start heartbeat and control receiver; see :func:`agentwatch.sdk.init`."""
        self.service_name = service_name
        self.instance_id = instance_id
        self._provider = provider
        self._exporter = exporter
        self._tracer = provider.get_tracer(_TRACER_NAME)
        self._breaker = Breaker()
        self._errors = ErrorCounter()
        self._shutdown_lock = threading.Lock()
        self._is_shut_down = False
        self._receiver: ControlReceiver | None = None
        if verifier is not None:
            try:
                self._receiver = ControlReceiver(
                    agent_id=instance_id,
                    verifier=verifier,
                    apply_breaker=self._apply_breaker,
                    host=control_host,
                    port=control_port,
                )
            except OSError as exc:
                logger.warning(
                    "control receiver not started: cannot bind %s:%s (%s)",
                    control_host,
                    control_port,
                    exc,
                )
        self._heartbeat = Heartbeat(
            tracer=self._tracer,
            interval_s=heartbeat_interval_s,
            errors=self._errors,
            control_url=self.control_url,
        )
        if self._receiver is not None:
            self._receiver.start()
        self._heartbeat.start()
        # Flush what is queued when the interpreter exits; unregistered by shutdown().
        atexit.register(self.shutdown)

    def __repr__(self) -> str:
        return f"Agent(service_name={self.service_name!r}, instance_id={self.instance_id!r})"

    def __enter__(self) -> Agent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    @property
    def control_url(self) -> str | None:
        """Where this agent receives control webhooks, or None without a receiver."""
        return self._receiver.url if self._receiver is not None else None

    @property
    def breaker_state(self) -> BreakerState:
        """The current circuit-breaker state."""
        return self._breaker.state

    @property
    def dropped_spans(self) -> int:
        """Spans the exporter failed to deliver so far."""
        return self._exporter.dropped_spans

    @contextlib.contextmanager
    def action(
        self,
        tool: str,
        args: Mapping[str, object] | None = None,
        *,
        call_id: str | None = None,
    ) -> Iterator[trace.Span]:
        """Guard and record one tool call: ``with agent.action("web_search", args={...}):``.

        First checks the breaker: ``OPEN`` or ``FORCED_OPEN`` raises :class:`CircuitOpenError`
        before any span starts (``HALF_OPEN`` lets probe actions through). Then records an
        ``execute_tool {tool}`` span, current for the body, carrying the tool name, the action
        :func:`fingerprint` and ``call_id``. An exception from the body marks the span ERROR with
        ``error.type``, is counted for the next heartbeat, and propagates unchanged.

        Thread-safe; does not block (the span is exported in the background).

        Args:
            tool: The tool name (``gen_ai.tool.name``).
            args: The call's arguments; only their fingerprint is recorded, never the values.
            call_id: Optional ``gen_ai.tool.call.id``.

        Yields:
            The action's span, for extra attributes.

        Raises:
            CircuitOpenError: The breaker blocks actions.
        """
        state, reason, anomaly_id = self._breaker.snapshot()
        if state.blocks_actions:
            raise CircuitOpenError(self.instance_id, state, reason, anomaly_id)
        attributes: dict[str, str] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: tool,
            semconv.ACTION_FINGERPRINT: fingerprint(tool, args),
            semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        }
        if call_id is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = call_id
        with self._tracer.start_as_current_span(
            f"{semconv.SPAN_EXECUTE_TOOL_PREFIX} {tool}",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as exc:
                self._errors.add()
                span.record_exception(exc)
                span.set_attribute(semconv.ERROR_TYPE, error_type(exc))
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def set_breaker_state(
        self, state: BreakerState | str, *, reason: str = "", anomaly_id: str = ""
    ) -> None:
        """Set the circuit-breaker state (the control receiver calls this too).

        Thread-safe; listeners run in the calling thread after the change.

        Raises:
            ValueError: ``state`` is not a :class:`BreakerState` value.
        """
        new_state = BreakerState(state)
        if self._breaker.set(new_state, reason=reason, anomaly_id=anomaly_id):
            logger.info("agent %s breaker is now %s", self.instance_id, new_state.value)

    def _apply_breaker(self, state: BreakerState, reason: str, anomaly_id: str) -> None:
        self.set_breaker_state(state, reason=reason, anomaly_id=anomaly_id)

    def add_breaker_listener(self, listener: BreakerListener) -> None:
        """Call ``listener(state, reason, anomaly_id)`` after every breaker state change.

        The listener runs in the thread that changed the state (often the control receiver's);
        it should be quick, and its exceptions are logged, not propagated.
        """
        self._breaker.add_listener(listener)

    def force_flush(self, timeout_ms: int = 30_000) -> bool:
        """Export every queued span; block about ``timeout_ms`` at most.

        Returns:
            True if everything queued was exported; False if an export failed or the
            deadline passed (spans still queued for a failing collector are then dropped
            and counted in :attr:`dropped_spans`). The bound can be exceeded by one export
            call in flight (at most the exporter's own timeout).
        """
        dropped_before = self._exporter.dropped_spans
        try:
            with self._exporter.deadline(timeout_ms / 1000):
                flushed = self._provider.force_flush(timeout_ms)
        except Exception:
            logger.warning("force_flush failed", exc_info=True)
            return False
        return flushed and self._exporter.dropped_spans == dropped_before

    def shutdown(self, timeout_ms: int = 5_000) -> None:
        """Stop heartbeat and receiver, flush, and shut down the provider. Idempotent.

        Blocks about ``timeout_ms`` at most when the collector is unreachable (see
        :meth:`force_flush`), promptly otherwise.
        """
        with self._shutdown_lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        atexit.unregister(self.shutdown)
        self._heartbeat.stop()
        if self._receiver is not None:
            self._receiver.shutdown()
        try:
            with self._exporter.deadline(timeout_ms / 1000):
                self._provider.shutdown()
        except Exception:
            logger.warning("tracer provider shutdown failed", exc_info=True)
