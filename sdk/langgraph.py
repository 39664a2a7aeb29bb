"""LangGraph integration: its checkpoints become agentwatch checkpoints; rollback resumes them.

Usage::

    from langgraph.checkpoint.memory import InMemorySaver
    from agentwatch.sdk import init
    from agentwatch.sdk.langgraph import LangGraphCheckpoints

    agent = init("planner")
    checkpoints = LangGraphCheckpoints(agent, InMemorySaver())
    graph = builder.compile(checkpointer=checkpoints.checkpointer)
    checkpoints.resume_on_rollback(graph)
    graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})

Every checkpoint LangGraph saves on a thread's root graph is recorded as an
``agentwatch.checkpoint`` span (its ``checkpoint_id``, and its ``step`` from LangGraph's
metadata; the input checkpoint, step -1, is recorded as step 0). When the service rolls the
agent back to one of them, the graph resumes that thread from it:
``graph.invoke(None, {"configurable": {"thread_id": t, "checkpoint_id": c}})``.

This module imports nothing from LangGraph itself: it works on whatever checkpointer and
compiled graph it is given, so importing it costs nothing without LangGraph installed.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from agentwatch.sdk._agent import Agent

logger = logging.getLogger(__name__)

__all__ = ["LangGraphCheckpoints"]

DEFAULT_MAX_REMEMBERED = 10_000


class LangGraphCheckpoints:
    """Records a LangGraph checkpointer's checkpoints and resumes threads on rollback.

    The checkpointer's ``put`` and ``aput`` are wrapped in place (every other method is
    untouched, so any saver works: ``InMemorySaver``, SQLite, Postgres, ...). A recording
    failure is logged, never raised into the graph. The thread of each recorded checkpoint is
    remembered (the newest ``max_remembered``), so a rollback needs only the checkpoint id.

    Thread-safe.

    Args:
        agent: The agentwatch agent recording the checkpoints.
        checkpointer: A LangGraph ``BaseCheckpointSaver`` instance.
        max_remembered: How many checkpoint -> thread mappings to keep.
    """

    def __init__(
        self,
        agent: Agent,
        checkpointer: Any,
        *,
        max_remembered: int = DEFAULT_MAX_REMEMBERED,
    ) -> None:
        self.agent = agent
        self.checkpointer = checkpointer
        self.max_remembered = max_remembered
        self._lock = threading.Lock()
        self._threads: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._wrap("put", is_async=False)
        if hasattr(checkpointer, "aput"):
            self._wrap("aput", is_async=True)

    def thread_of(self, checkpoint_id: str) -> str | None:
        """The thread id of a recorded checkpoint, or None if unknown."""
        with self._lock:
            return self._threads.get(checkpoint_id) or None

    def resume(self, graph: Any, checkpoint_id: str, *, thread_id: str | None = None) -> Any:
        """Resume ``thread_id`` (default: the checkpoint's recorded thread) from a checkpoint.

        Blocks while the graph runs; returns what ``graph.invoke`` returns.

        Raises:
            LookupError: The checkpoint's thread is unknown and none was given.
        """
        thread = thread_id or self.thread_of(checkpoint_id)
        if thread is None:
            raise LookupError(f"no recorded thread for checkpoint {checkpoint_id!r}")
        config = {"configurable": {"thread_id": thread, "checkpoint_id": checkpoint_id}}
        logger.info("resuming thread %s from checkpoint %s", thread, checkpoint_id)
        return graph.invoke(None, config)

    def resume_on_rollback(
        self, graph: Any, *, on_result: Callable[[str, Any], None] | None = None
    ) -> None:
        """Register a rollback handler on the agent that resumes ``graph`` from the checkpoint.

        Runs in the SDK's remediation thread, at most once per rollback webhook-id.

        Args:
            graph: The compiled graph (``builder.compile(checkpointer=self.checkpointer)``).
            on_result: Called with ``(checkpoint_id, result)`` after the resumed run.
        """

        def rollback(checkpoint_id: str) -> None:
            result = self.resume(graph, checkpoint_id)
            if on_result is not None:
                on_result(checkpoint_id, result)

        self.agent.on_rollback(rollback)

    def _wrap(self, name: str, *, is_async: bool) -> None:
        original = getattr(self.checkpointer, name)

        if is_async:

            @functools.wraps(original)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await original(*args, **kwargs)
                self._record(args, kwargs, result)
                return result

            setattr(self.checkpointer, name, async_wrapper)
            return

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self._record(args, kwargs, result)
            return result

        setattr(self.checkpointer, name, wrapper)

    def _record(self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        try:
            config = _arg(args, kwargs, 0, "config")
            checkpoint = _arg(args, kwargs, 1, "checkpoint")
            metadata = _arg(args, kwargs, 2, "metadata") or {}
            configurable = _configurable(result) or _configurable(config)
            if configurable.get("checkpoint_ns", ""):
                return  # a subgraph's checkpoint: not a point the root thread resumes from
            checkpoint_id = str(
                configurable.get("checkpoint_id") or (checkpoint or {}).get("id") or ""
            )
            thread_id = str(_configurable(config).get("thread_id") or "")
            if not checkpoint_id:
                return
            step = metadata.get("step", 0) if isinstance(metadata, Mapping) else 0
            with self._lock:
                if checkpoint_id in self._threads:
                    return  # an aput that delegates to put (InMemorySaver does): once only
                self._threads[checkpoint_id] = thread_id
                while len(self._threads) > self.max_remembered:
                    self._threads.popitem(last=False)
            self.agent.checkpoint(checkpoint_id, max(0, int(step)))
        except Exception:
            logger.warning("recording a LangGraph checkpoint failed", exc_info=True)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _configurable(config: Any) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        configurable = config.get("configurable")
        if isinstance(configurable, Mapping):
            return configurable
    return {}
