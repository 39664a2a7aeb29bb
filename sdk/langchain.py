"""LangChain integration: every tool run is an agentwatch action, guarded by the breaker.

Usage::

    from agentwatch.sdk import init
    from agentwatch.sdk.langchain import AgentwatchCallbackHandler

    agent = init("researcher")
    handler = AgentwatchCallbackHandler(agent)
    search_tool.invoke({"query": "solar tariffs"}, config={"callbacks": [handler]})
    # or any runnable, agent or graph: config={"callbacks": [handler]}

Each tool run LangChain reports (``on_tool_start`` ... ``on_tool_end`` / ``on_tool_error``)
is recorded through :meth:`Agent.action <agentwatch.sdk.Agent.action>`: an
``execute_tool {tool name}`` span, current while the tool runs, whose fingerprint is taken
from the tool's input (the ``inputs`` dict LangChain passes; a plain string input as
``{"input": text}``), with the tool call's id as ``gen_ai.tool.call.id`` when there is one.
A failing tool marks the span ERROR and is counted for the next heartbeat.

While the breaker blocks actions, ``on_tool_start`` raises :class:`CircuitOpenError` (after
the pause, in ``pause`` mode); the handlers set LangChain's ``raise_error``, so the error
propagates out of the tool call and the tool does not run. They also set ``run_inline``:
LangChain then calls them in the tool run's own context, not in an executor thread, so the
span is current for the tool's body and is ended in the context it was started in.

:class:`AgentwatchCallbackHandler` serves sync and async runs; in ``pause`` mode it blocks
the calling thread while it waits, which in an async run is the event loop.
:class:`AsyncAgentwatchCallbackHandler` awaits instead; use it for async runs only (LangChain
runs an async handler's callbacks for a sync run in a separate event loop).

Importing this module imports ``langchain_core`` (``pip install 'agentwatch[langchain]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from agentwatch.sdk._agent import Agent
from agentwatch.sdk._scopes import ActionScope

__all__ = ["AgentwatchCallbackHandler", "AsyncAgentwatchCallbackHandler"]

UNNAMED_TOOL = "tool"
"""The tool name recorded when LangChain reports none."""


class _ToolRuns:
    """The action scope of each tool run in flight, by LangChain run id. Thread-safe."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._lock = threading.Lock()
        self._scopes: dict[UUID, ActionScope] = {}

    def action(
        self,
        serialized: Mapping[str, Any] | None,
        input_str: str,
        inputs: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> ActionScope:
        name = (serialized or {}).get("name") or kwargs.get("name") or UNNAMED_TOOL
        args: Mapping[str, object] = inputs if inputs is not None else {"input": input_str}
        call_id = kwargs.get("tool_call_id")
        return self.agent.action(
            str(name), args, call_id=call_id if isinstance(call_id, str) else None
        )

    def started(self, run_id: UUID, scope: ActionScope) -> None:
        with self._lock:
            self._scopes[run_id] = scope

    def take(self, run_id: UUID) -> ActionScope | None:
        with self._lock:
            return self._scopes.pop(run_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._scopes)


class AgentwatchCallbackHandler(BaseCallbackHandler):
    """Records each LangChain tool run as an action of ``agent``; the breaker guards it.

    Thread-safe; one handler may serve many concurrent runs. ``on_tool_start`` blocks only in
    the breaker's ``pause`` mode, and raises only :class:`CircuitOpenError`.

    Args:
        agent: The agentwatch agent recording the actions.
    """

    raise_error = True  # CircuitOpenError must stop the tool, not be logged and ignored
    run_inline = True  # start and end the span in the tool run's context

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._runs = _ToolRuns(agent)

    @property
    def runs_in_flight(self) -> int:
        """Tool runs started and not yet ended."""
        return len(self._runs)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Guard the tool run, then start its action span."""
        scope = self._runs.action(serialized, input_str, inputs, kwargs)
        scope.__enter__()
        self._runs.started(run_id, scope)

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """End the run's action span."""
        scope = self._runs.take(run_id)
        if scope is not None:
            scope.__exit__(None, None, None)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """End the run's action span, marked with the error."""
        scope = self._runs.take(run_id)
        if scope is not None:
            scope.__exit__(type(error), error, error.__traceback__)


class AsyncAgentwatchCallbackHandler(AsyncCallbackHandler):
    """Like :class:`AgentwatchCallbackHandler` for async runs: a paused action awaits.

    Thread-safe. ``on_tool_start`` never blocks the event loop; it raises only
    :class:`CircuitOpenError`.

    Args:
        agent: The agentwatch agent recording the actions.
    """

    raise_error = True
    run_inline = True

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._runs = _ToolRuns(agent)

    @property
    def runs_in_flight(self) -> int:
        """Tool runs started and not yet ended."""
        return len(self._runs)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Guard the tool run (awaiting in pause mode), then start its action span."""
        scope = self._runs.action(serialized, input_str, inputs, kwargs)
        await scope.__aenter__()
        self._runs.started(run_id, scope)

    async def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """End the run's action span."""
        scope = self._runs.take(run_id)
        if scope is not None:
            await scope.__aexit__(None, None, None)

    async def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """End the run's action span, marked with the error."""
        scope = self._runs.take(run_id)
        if scope is not None:
            await scope.__aexit__(type(error), error, error.__traceback__)
