"""The handle of one instrumented agent: identity, breaker, control plane, lifecycle.

The signal methods (actions, tools, sessions, decisions, ...) live in its base,
:class:`~agentwatch.sdk._recorder.SignalRecorder`.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry.sdk.trace import TracerProvider

from agentwatch.sdk import semconv
from agentwatch.sdk._asgi import ASGIApp, control_asgi_app
from agentwatch.sdk._breaker import Breaker, BreakerListener, BreakerMode, BreakerState
from agentwatch.sdk._control import ControlHandler, ControlReceiver
from agentwatch.sdk._dispatch import RemediationDispatcher
from agentwatch.sdk._errors import AgentwatchError
from agentwatch.sdk._exporter import GuardedSpanExporter
from agentwatch.sdk._heartbeat import ErrorCounter, Heartbeat
from agentwatch.sdk._poller import ControlPoller
from agentwatch.sdk._processor import ExportStats, PrioritySpanProcessor
from agentwatch.sdk._recorder import SignalRecorder
from agentwatch.sdk._scopes import Guard
from agentwatch.sdk._webhooks import WebhookVerifier

logger = logging.getLogger(__name__)

_TRACER_NAME = "agentwatch.sdk"
_STATUSES = frozenset({semconv.STATUS_RUNNING, semconv.STATUS_IDLE, semconv.STATUS_PAUSED})
R = TypeVar("R", bound=Callable[[str], Any])
FO = TypeVar("FO", bound=Callable[[str, str], Any])


class Agent(SignalRecorder):
    """The handle of one instrumented agent instance; create it with :func:`agentwatch.sdk.init`.

    Owns its own ``TracerProvider`` (never the global one, so many agents can share a process),
    its heartbeat thread and, when configured, its control receiver and control poller.

    Signals (DESIGN.md, "Telemetry contract"): :meth:`session`, :meth:`action` and
    :meth:`tool`, :meth:`decision` are scopes (``with`` and ``async with``); :meth:`transition`,
    :meth:`goal`, :meth:`checkpoint` and :meth:`message` record instant spans under the current
    span. Control: the breaker guard, :meth:`on_rollback`, :meth:`on_failover`,
    :meth:`asgi_app`.

    Thread-safe: every method may be called from any thread. Only the action guard raises into
    the agent at run time, and only :class:`CircuitOpenError`, by design; invalid arguments
    raise ``ValueError`` naming the parameter.
    """

    def __init__(
        self,
        *,
        service_name: str,
        instance_id: str,
        provider: TracerProvider,
        exporter: GuardedSpanExporter,
        processor: PrioritySpanProcessor,
        heartbeat_interval_s: float,
        verifier: WebhookVerifier | None = None,
        control_host: str = "127.0.0.1",
        control_port: int = 0,
        control_server: bool = True,
        control_url: str | None = None,
        breaker_mode: BreakerMode = BreakerMode.RAISE,
        breaker_pause_timeout_s: float = 60.0,
        api_url: str | None = None,
        api_token: str | None = None,
        control_poll_interval_s: float = 5.0,
    ) -> None:
        """Start heartbeat, control receiver and poller; see :func:`agentwatch.sdk.init`."""
        self.service_name = service_name
        self.instance_id = instance_id
        self._provider = provider
        self._exporter = exporter
        self._processor = processor
        self._breaker = Breaker()
        super().__init__(
            tracer=provider.get_tracer(_TRACER_NAME),
            guard=Guard(self._breaker, instance_id, breaker_mode, breaker_pause_timeout_s),
            errors=ErrorCounter(),
        )
        self._status = semconv.STATUS_RUNNING
        self._dispatcher = RemediationDispatcher()
        self._shutdown_lock = threading.Lock()
        self._is_shut_down = False
        self._handler: ControlHandler | None = None
        self._receiver: ControlReceiver | None = None
        if verifier is not None:
            self._handler = ControlHandler(
                agent_id=instance_id,
                verifier=verifier,
                apply_breaker=self._apply_breaker,
                dispatcher=self._dispatcher,
            )
        if self._handler is not None and control_server:
            try:
                self._receiver = ControlReceiver(
                    self._handler, host=control_host, port=control_port
                )
            except OSError as exc:
                logger.warning(
                    "control receiver not started: cannot bind %s:%s (%s)",
                    control_host,
                    control_port,
                    exc,
                )
        self._control_url = control_url
        self._poller: ControlPoller | None = None
        if api_url:
            self._poller = ControlPoller(
                agent_id=instance_id,
                api_url=api_url,
                breaker=self._breaker,
                apply_breaker=self._apply_breaker,
                dispatcher=self._dispatcher,
                token=api_token,
                interval_s=control_poll_interval_s,
            )
        self._heartbeat = Heartbeat(
            tracer=self._tracer,
            interval_s=heartbeat_interval_s,
            errors=self._errors,
            control_url=self.control_url,
            status=lambda: self.status,
            admit=processor.admits_heartbeat,
        )
        if self._receiver is not None:
            self._receiver.start()
        self._heartbeat.start()
        if self._poller is not None:
            self._poller.start()
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

    # --- identity and state ---------------------------------------------------------------

    @property
    def control_url(self) -> str | None:
        """Where this agent receives control webhooks (advertised in heartbeats), or None."""
        if self._control_url is not None:
            return self._control_url
        return self._receiver.url if self._receiver is not None else None

    @property
    def breaker_state(self) -> BreakerState:
        """The current circuit-breaker state."""
        return self._breaker.state

    @property
    def breaker_mode(self) -> BreakerMode:
        """What a blocked action does: raise at once, or pause first."""
        return self._guard.mode

    @property
    def status(self) -> str:
        """The status heartbeats report: ``paused`` while the breaker blocks, else as set."""
        if self._status == semconv.STATUS_STOPPED:
            return self._status
        return semconv.STATUS_PAUSED if self._breaker.state.blocks_actions else self._status

    def set_status(self, status: str) -> None:
        """Set the status reported by heartbeats: ``running``, ``idle`` or ``paused``.

        Raises:
            ValueError: Another value.
        """
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {status!r}")
        self._status = status

    @property
    def dropped_spans(self) -> int:
        """Spans lost so far: refused by a full queue or failed to export."""
        return self.export_stats().dropped

    def export_stats(self) -> ExportStats:
        """Counters of this agent's span pipeline (queued, exported, dropped, sampled)."""
        return self._processor.stats(export_failed=self._exporter.dropped_spans)

    # --- control --------------------------------------------------------------------------

    def set_breaker_state(
        self, state: BreakerState | str, *, reason: str = "", anomaly_id: str = ""
    ) -> None:
        """Set the circuit-breaker state (the control receiver and poller call this too).

        Thread-safe; listeners run in the calling thread after the change; paused actions
        resume when the state stops blocking.

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

    def on_rollback(self, handler: R) -> R:
        """Register ``handler(checkpoint_id)`` for rollbacks; usable as a decorator.

        Handlers run in the SDK's remediation thread (a coroutine function is run to
        completion there), in order, at most once per webhook-id whether the rollback arrives
        by webhook, by its retries, or by the pull fallback. Exceptions are logged.
        """
        self._dispatcher.add_rollback_handler(handler)
        return handler

    def on_failover(self, handler: FO) -> FO:
        """Register ``handler(failed_agent, checkpoint_id)`` on a standby; a decorator too.

        Runs like :meth:`on_rollback` handlers when the service hands this standby the last
        checkpoint of an agent whose heartbeats stopped (``checkpoint_id`` may be "").
        """
        self._dispatcher.add_failover_handler(handler)
        return handler

    def join_remediations(self, timeout_s: float = 30.0) -> bool:
        """Block until queued rollback and failover handlers ran; True if none is pending."""
        return self._dispatcher.wait_idle(timeout_s)

    def asgi_app(self) -> ASGIApp:
        """Return the control receiver as an ASGI app to mount in FastAPI or Starlette.

        ``app.mount("/agentwatch", agent.asgi_app())`` then receives control webhooks at
        ``/agentwatch`` (and ``/agentwatch/control``); pass that public URL as ``control_url``
        to :func:`init` so heartbeats advertise it (and ``control_server=False`` to skip the
        thread server). Same verification and answers as the thread server.

        Raises:
            AgentwatchError: No webhook secret is configured.
        """
        if self._handler is None:
            raise AgentwatchError("asgi_app() needs a webhook secret (AGENTWATCH_WEBHOOK_SECRET)")
        return control_asgi_app(self._handler)

    def poll_control(self) -> bool:
        """Poll the control state from the service now (the poller does it periodically).

        Returns:
            True if the state was fetched and reconciled; False without an API URL or on error.
        """
        return self._poller.poll_once() if self._poller is not None else False

    # --- lifecycle ------------------------------------------------------------------------

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
        """Stop poller, heartbeat, receiver and remediation thread; flush; shut down. Idempotent.

        Blocks about ``timeout_ms`` at most when the collector is unreachable (see
        :meth:`force_flush`), promptly otherwise; a rollback handler still running is left
        to finish in its daemon thread after a short wait.
        """
        with self._shutdown_lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        atexit.unregister(self.shutdown)
        if self._poller is not None:
            self._poller.stop()
        self._heartbeat.stop()
        # One last beat saying "stopped": the service then knows the silence that follows is
        # a clean exit, not a lost agent to fail over.
        self._status = semconv.STATUS_STOPPED
        self._heartbeat.beat()
        if self._receiver is not None:
            self._receiver.shutdown()
        self._dispatcher.shutdown(timeout_s=min(5.0, timeout_ms / 1000))
        try:
            with self._exporter.deadline(timeout_ms / 1000):
                self._provider.shutdown()
        except Exception:
            logger.warning("tracer provider shutdown failed", exc_info=True)
