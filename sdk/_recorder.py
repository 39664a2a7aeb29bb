"""The signal methods of an agent: actions and tools, sessions, decisions, instant signals."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from opentelemetry import trace

from agentwatch.sdk import semconv
from agentwatch.sdk._heartbeat import ErrorCounter
from agentwatch.sdk._scopes import (
    ActionScope,
    AttributeValue,
    DecisionScope,
    Guard,
    SessionScope,
    emit,
    tool_decorator,
)

_DIRECTIONS = frozenset({semconv.DIRECTION_SEND, semconv.DIRECTION_RECEIVE})

F = TypeVar("F", bound=Callable[..., Any])


class SignalRecorder:
    """Records the signals of the telemetry contract (DESIGN.md) on one agent's tracer.

    The base of :class:`~agentwatch.sdk.Agent`, whose signal methods these are:
    :meth:`session`, :meth:`action` and :meth:`tool`, :meth:`decision` are scopes (``with``
    and ``async with``); :meth:`transition`, :meth:`goal`, :meth:`checkpoint` and
    :meth:`message` record instant spans under the current span.

    Thread-safe: every method may be called from any thread. Only the action guard raises
    into the agent at run time, and only :class:`CircuitOpenError`, by design; invalid
    arguments raise ``ValueError`` naming the parameter.

    Args:
        tracer: The agent's tracer.
        guard: The breaker guard every action passes first.
        errors: Counts the actions that raised, for the next heartbeat.
    """

    def __init__(self, *, tracer: trace.Tracer, guard: Guard, errors: ErrorCounter) -> None:
        self._tracer = tracer
        self._guard = guard
        self._errors = errors

    def action(
        self,
        tool: str,
        args: Mapping[str, object] | None = None,
        *,
        call_id: str | None = None,
    ) -> ActionScope:
        """Guard and record one tool call: ``with agent.action("web_search", args={...}):``.

        Also ``async with``. First the breaker guard: while it is ``OPEN`` or ``FORCED_OPEN``,
        :class:`CircuitOpenError` is raised before any span starts, at once in ``raise`` mode,
        after waiting up to the pause timeout for the breaker to let actions through in
        ``pause`` mode (``async with`` awaits instead of blocking the loop). ``HALF_OPEN`` lets
        probe actions through. Then an ``execute_tool {tool}`` span, current for the body,
        carries the tool name, the action :func:`fingerprint` and ``call_id``. An exception from
        the body marks the span ERROR with ``error.type``, is counted for the next heartbeat,
        and propagates unchanged.

        Thread-safe; does not block (the span is exported in the background) except to pause.

        Args:
            tool: The tool name (``gen_ai.tool.name``).
            args: The call's arguments; only their fingerprint is recorded, never the values.
            call_id: Optional ``gen_ai.tool.call.id``.

        Returns:
            The scope; entering it yields the action's span, for extra attributes.

        Raises:
            CircuitOpenError: On enter, when the breaker blocks actions.
        """
        return ActionScope(self._tracer, self._guard, self._errors, tool, args, call_id)

    @overload
    def tool(self, name: F, /) -> F: ...

    @overload
    def tool(self, name: str | None = None, /) -> Callable[[F], F]: ...

    def tool(self, name: str | F | None = None, /) -> F | Callable[[F], F]:
        """Decorate a sync or async function so every call is an :meth:`action`.

        ``@agent.tool("web_search")``, ``@agent.tool()`` or ``@agent.tool`` (the function's
        name). The fingerprint comes from the call's bound arguments, defaults applied, without
        a leading ``self``/``cls``; so ``search("x")`` and ``search(query="x")`` match.
        """
        if callable(name):
            return tool_decorator(self.action, None, name)
        tool_name = name

        def decorate(fn: F) -> F:
            return tool_decorator(self.action, tool_name, fn)

        return decorate

    def session(self, name: str, *, conversation_id: str | None = None) -> SessionScope:
        """Record one session or task: ``invoke_agent {name}``, parent of what runs inside.

        Also ``async with``; entering yields the span. Sets ``gen_ai.operation.name`` =
        ``invoke_agent``, ``gen_ai.agent.name`` = ``name`` and ``gen_ai.conversation.id``.
        An exception marks the span ERROR and propagates. Thread-safe; never blocks.
        """
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: name,
            semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        }
        if conversation_id is not None:
            attributes[semconv.GEN_AI_CONVERSATION_ID] = conversation_id
        return SessionScope(self._tracer, f"{semconv.SPAN_INVOKE_AGENT_PREFIX} {name}", attributes)

    def decision(self, choice: str | None = None, *, options: int | None = None) -> DecisionScope:
        """Record one decision; the span's duration is the decision's latency.

        ``with agent.decision(options=3) as d: ...; d.choose("web_search")`` (or pass
        ``choice`` up front). Also ``async with``. Thread-safe; never blocks.

        Args:
            choice: The chosen action key (``agentwatch.decision.choice``), if known now.
            options: How many options were considered (``agentwatch.decision.options``).

        Raises:
            ValueError: ``options`` is negative.
        """
        attributes: dict[str, AttributeValue] = {semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR}
        if choice is not None:
            attributes[semconv.DECISION_CHOICE] = choice
        if options is not None:
            if options < 0:
                raise ValueError(f"options must be >= 0, got {options!r}")
            attributes[semconv.DECISION_OPTIONS] = int(options)
        return DecisionScope(self._tracer, semconv.SPAN_DECISION, attributes)

    def transition(self, from_: str, to: str) -> None:
        """Record a state transition ``from_ -> to`` (``agentwatch.state_transition``)."""
        emit(
            self._tracer,
            semconv.SPAN_STATE_TRANSITION,
            {
                semconv.STATE_FROM: from_,
                semconv.STATE_TO: to,
                semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
            },
        )

    def goal(self, goal_id: str, progress: float) -> None:
        """Record progress toward a goal (``agentwatch.goal_progress``).

        Raises:
            ValueError: ``progress`` is not a finite number in [0, 1].
        """
        value = float(progress)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"progress must be in [0, 1], got {progress!r}")
        emit(
            self._tracer,
            semconv.SPAN_GOAL_PROGRESS,
            {
                semconv.GOAL_ID: goal_id,
                semconv.GOAL_PROGRESS: value,
                semconv.SIGNAL: semconv.SIGNAL_HEALTH,
            },
        )

    def checkpoint(self, checkpoint_id: str, step: int) -> None:
        """Record a checkpoint the agent can be rolled back to (``agentwatch.checkpoint``).

        Raises:
            ValueError: Empty ``checkpoint_id`` or negative ``step``.
        """
        if not checkpoint_id:
            raise ValueError("checkpoint_id must be a non-empty string")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step!r}")
        emit(
            self._tracer,
            semconv.SPAN_CHECKPOINT,
            {
                semconv.CHECKPOINT_ID: checkpoint_id,
                semconv.CHECKPOINT_STEP: int(step),
                semconv.SIGNAL: semconv.SIGNAL_SYSTEM,
            },
        )

    def message(self, peer: str, direction: str, size_bytes: int) -> None:
        """Record a message to or from another agent (``agentwatch.message``).

        Args:
            peer: The peer's instance id.
            direction: ``"send"`` or ``"receive"``.
            size_bytes: The message size.

        Raises:
            ValueError: Another direction, or a negative size.
        """
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'send' or 'receive', got {direction!r}")
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be >= 0, got {size_bytes!r}")
        emit(
            self._tracer,
            semconv.SPAN_MESSAGE,
            {
                semconv.MESSAGE_PEER: peer,
                semconv.MESSAGE_DIRECTION: direction,
                semconv.MESSAGE_BYTES: int(size_bytes),
                semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
            },
        )
