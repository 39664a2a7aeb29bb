"""Scopes of the span-shaped signals: actions, sessions, decisions; sync and async.

Each scope is one object usable both as ``with`` and ``async with``. It starts its span on
enter, makes it current (so later signals nest under it), and ends it on exit, marking an
exception as the span's error. Plain classes rather than ``contextlib.contextmanager``: the
generator machinery costs several microseconds per action, and an action is the hot path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentwatch.sdk import semconv
from agentwatch.sdk._breaker import Breaker, BreakerMode
from agentwatch.sdk._errors import CircuitOpenError
from agentwatch.sdk._fingerprint import fingerprint
from agentwatch.sdk._heartbeat import ErrorCounter

F = TypeVar("F", bound=Callable[..., Any])
AttributeValue = str | bool | int | float

# Bound once: every action goes through these.
_attach = context.attach
_detach = context.detach
_set_span_in_context = trace.set_span_in_context
_INTERNAL = SpanKind.INTERNAL


def error_type(exc: BaseException) -> str:
    """Return the ``error.type`` of an exception: its class's fully qualified name."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class Guard:
    """Applies the breaker to the agent's next action, in ``raise`` or ``pause`` mode.

    Thread-safe. :meth:`check` blocks (pause mode only) up to ``pause_timeout_s``;
    :meth:`async_check` waits without blocking the event loop.
    """

    __slots__ = ("agent_id", "breaker", "mode", "pause_timeout_s")

    def __init__(
        self, breaker: Breaker, agent_id: str, mode: BreakerMode, pause_timeout_s: float
    ) -> None:
        self.breaker = breaker
        self.agent_id = agent_id
        self.mode = mode
        self.pause_timeout_s = pause_timeout_s

    def check(self) -> None:
        """Return if an action may run now; else pause (pause mode) and raise if still blocked.

        Raises:
            CircuitOpenError: The breaker is OPEN or FORCED_OPEN (after the pause, if any).
        """
        if not self.breaker.blocks_actions:  # the fast path: one attribute read
            return
        state, reason, anomaly_id = self.breaker.snapshot()
        if not state.blocks_actions:
            return
        if self.mode is BreakerMode.PAUSE:
            state, reason, anomaly_id = self.breaker.wait_until_allowed(self.pause_timeout_s)
            if not state.blocks_actions:
                return
        raise CircuitOpenError(self.agent_id, state, reason, anomaly_id)

    async def async_check(self) -> None:
        """Like :meth:`check`, awaiting instead of blocking the event loop."""
        if not self.breaker.blocks_actions:
            return
        state, reason, anomaly_id = self.breaker.snapshot()
        if not state.blocks_actions:
            return
        if self.mode is BreakerMode.PAUSE:
            snapshot = await self.breaker.async_wait_until_allowed(self.pause_timeout_s)
            state, reason, anomaly_id = snapshot
            if not state.blocks_actions:
                return
        raise CircuitOpenError(self.agent_id, state, reason, anomaly_id)


class CurrentSpanScope:
    """Makes a started span current, then on exit restores the context and ends the span.

    An exception (not a ``BaseException`` such as cancellation) marks the span ERROR with
    ``error.type`` and is counted in ``errors``. Subclasses start the span.
    """

    __slots__ = ("_errors", "_token", "span")

    _errors: ErrorCounter | None
    _token: object
    span: Span

    def _activate(self, span: Span) -> Span:
        self._token = _attach(_set_span_in_context(span))
        self.span = span
        return span

    def _finish(self, exc: BaseException | None) -> None:
        span = self.span
        if isinstance(exc, Exception):
            if self._errors is not None:
                self._errors.add()
            span.record_exception(exc)
            span.set_attribute(semconv.ERROR_TYPE, error_type(exc))
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        _detach(self._token)  # type: ignore[arg-type]  # the token attach() returned
        span.end()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:  # the common case, one call less
            _detach(self._token)  # type: ignore[arg-type]  # the token attach() returned
            self.span.end()
        else:
            self._finish(exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc)


class SpanScope(CurrentSpanScope):
    """Starts a span named ``name`` with ``attributes`` on enter, current for the body."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        attributes: dict[str, AttributeValue],
        errors: ErrorCounter | None = None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._errors = errors
        self._token = None
        self.span = trace.INVALID_SPAN

    def _start(self) -> Span:
        span = self._tracer.start_span(
            self._name,
            kind=_INTERNAL,
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        return self._activate(span)

    def __enter__(self) -> Any:
        return self._start()

    async def __aenter__(self) -> Any:
        return self._start()


class ActionScope(CurrentSpanScope):
    """One guarded tool call: ``execute_tool {tool}``; enter yields the span.

    The guard runs first, so a blocked action raises before any span or fingerprint. The
    hot path of the SDK: the constructor only stores its arguments, and the attributes are
    built once, on enter, in their final shape.
    """

    __slots__ = ("_args", "_call_id", "_guard", "_tool", "_tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        guard: Guard,
        errors: ErrorCounter,
        tool: str,
        args: Mapping[str, object] | None,
        call_id: str | None,
    ) -> None:
        self._tracer = tracer
        self._guard = guard
        self._errors = errors
        self._tool = tool
        self._args = args
        self._call_id = call_id
        self._token = None
        self.span = trace.INVALID_SPAN

    def _start(self) -> Span:
        tool = self._tool
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: tool,
            semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        }
        if self._call_id is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = self._call_id
        attributes[semconv.ACTION_FINGERPRINT] = fingerprint(tool, self._args)
        span = self._tracer.start_span(
            f"{semconv.SPAN_EXECUTE_TOOL_PREFIX} {tool}",
            kind=_INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._token = _attach(_set_span_in_context(span))  # _activate(), inline
        self.span = span
        return span

    def __enter__(self) -> Span:
        self._guard.check()
        return self._start()

    async def __aenter__(self) -> Span:
        await self._guard.async_check()
        return self._start()


class SessionScope(SpanScope):
    """One agent session or task: ``invoke_agent {name}``; enter yields the span."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return self._start()

    async def __aenter__(self) -> Span:
        return self._start()


class DecisionScope(SpanScope):
    """One decision: ``agentwatch.decision``; its duration is the decision's latency.

    Enter yields the scope itself; call :meth:`choose` in the body when the choice is known
    only at the end. A decision left without a choice records ``""``.
    """

    __slots__ = ()

    def choose(self, choice: str) -> None:
        """Record the chosen action key."""
        self._attributes[semconv.DECISION_CHOICE] = choice
        if self.span.is_recording():
            self.span.set_attribute(semconv.DECISION_CHOICE, choice)

    def __enter__(self) -> DecisionScope:
        self._attributes.setdefault(semconv.DECISION_CHOICE, "")
        self._start()
        return self

    async def __aenter__(self) -> DecisionScope:
        return self.__enter__()


def emit(tracer: trace.Tracer, name: str, attributes: dict[str, AttributeValue]) -> None:
    """Record an instant signal (a span that starts and ends now) under the current span."""
    tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes).end()


def tool_decorator(
    action: Callable[[str, Mapping[str, object] | None], ActionScope], name: str | None, fn: F
) -> F:
    """Wrap ``fn`` (sync or async) so each call runs inside ``action(name, bound_arguments)``.

    The fingerprinted arguments are the call's bound arguments with defaults applied, so
    ``f(1)`` and ``f(x=1)`` match; a leading ``self`` or ``cls`` is left out.
    """
    tool = name or fn.__name__
    signature = inspect.signature(fn)
    params = list(signature.parameters)
    skip = params[0] if params and params[0] in ("self", "cls") else None

    def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, object]:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # the call itself will fail the same way, inside the action
            return {"args": args, "kwargs": kwargs}
        bound.apply_defaults()
        found = bound.arguments
        if skip is not None:
            found = {key: value for key, value in found.items() if key != skip}
        return found

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            async with action(tool, arguments(args, kwargs)):
                return await fn(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with action(tool, arguments(args, kwargs)):
            return fn(*args, **kwargs)

    return cast(F, wrapper)
