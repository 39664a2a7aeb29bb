"""LangGraph: a real small StateGraph and the in-memory checkpointer, through the SDK."""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.sdk import Agent, init, semconv
from agentwatch.sdk.langgraph import LangGraphCheckpoints

from ..unit.sdk.conftest import SECRET, signed_headers

langgraph_graph = pytest.importorskip("langgraph.graph")
langgraph_memory = pytest.importorskip("langgraph.checkpoint.memory")

pytestmark = pytest.mark.integration

AGENT_ID = "planner-1"


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def build(agent: Agent, checkpointer: Any) -> Any:
    def plan(state: State) -> dict[str, list[str]]:
        with agent.action("plan", args={"n": len(state["steps"])}):
            return {"steps": ["plan"]}

    def act(state: State) -> dict[str, list[str]]:
        with agent.action("act", args={"n": len(state["steps"])}):
            return {"steps": ["act"]}

    def report(state: State) -> dict[str, list[str]]:
        return {"steps": ["report"]}

    builder = langgraph_graph.StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("act", act)
    builder.add_node("report", report)
    builder.add_edge(langgraph_graph.START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", langgraph_graph.END)
    return builder.compile(checkpointer=checkpointer)


@pytest.fixture
def agent_and_spans() -> Iterator[tuple[Agent, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with init(
        "planner",
        instance_id=AGENT_ID,
        webhook_secret=SECRET,
        span_exporter=exporter,
        heartbeat_interval_s=3600,
        environ={},
    ) as agent:
        yield agent, exporter


def recorded_checkpoints(exporter: InMemorySpanExporter) -> list[tuple[str, int]]:
    recorded = []
    for span in exporter.get_finished_spans():
        if span.name == semconv.SPAN_CHECKPOINT:
            attributes = dict(span.attributes or {})
            step = attributes[semconv.CHECKPOINT_STEP]
            assert isinstance(step, int)
            recorded.append((str(attributes[semconv.CHECKPOINT_ID]), step))
    return recorded


def checkpoint_id_of(snapshot: Any) -> str:
    return str(snapshot.config["configurable"]["checkpoint_id"])


def test_langgraph_checkpoints_are_recorded(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, exporter = agent_and_spans
    checkpoints = LangGraphCheckpoints(agent, langgraph_memory.InMemorySaver())
    graph = build(agent, checkpoints.checkpointer)
    config = {"configurable": {"thread_id": "t-1"}}
    assert graph.invoke({"steps": []}, config)["steps"] == ["plan", "act", "report"]
    assert agent.force_flush()

    history = list(graph.get_state_history(config))
    expected = {snap.config["configurable"]["checkpoint_id"] for snap in history}
    recorded = recorded_checkpoints(exporter)
    assert {checkpoint_id for checkpoint_id, _ in recorded} == expected
    steps = {
        snap.config["configurable"]["checkpoint_id"]: snap.metadata["step"] for snap in history
    }
    assert all(step == max(0, steps[checkpoint_id]) for checkpoint_id, step in recorded)
    assert all(checkpoints.thread_of(checkpoint_id) == "t-1" for checkpoint_id in expected)


def test_rollback_webhook_resumes_the_thread_from_the_chosen_checkpoint(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, _ = agent_and_spans
    checkpoints = LangGraphCheckpoints(agent, langgraph_memory.InMemorySaver())
    graph = build(agent, checkpoints.checkpointer)
    results: list[tuple[str, Any]] = []
    checkpoints.resume_on_rollback(graph, on_result=lambda c, r: results.append((c, r)))
    config = {"configurable": {"thread_id": "t-2"}}
    graph.invoke({"steps": []}, config)
    old_head = checkpoint_id_of(graph.get_state(config))

    # The checkpoint taken after "plan" ran, before "act": the service's "last good" one.
    after_plan = next(snap for snap in graph.get_state_history(config) if snap.next == ("act",))
    checkpoint_id = after_plan.config["configurable"]["checkpoint_id"]
    assert after_plan.values["steps"] == ["plan"]

    body = json.dumps(
        {"type": "rollback", "agent": AGENT_ID, "checkpoint_id": checkpoint_id, "reason": "loop"}
    ).encode()
    assert agent.control_url is not None
    for _ in range(2):  # a retried delivery resumes once
        headers = signed_headers(body, webhook_id="wh_lg_1", timestamp=int(time.time()))
        response = httpx.post(agent.control_url, content=body, headers=headers, timeout=10)
        assert response.status_code in (200, 202)
    assert agent.join_remediations(30)

    assert len(results) == 1
    resumed_from, result = results[0]
    assert resumed_from == checkpoint_id
    # Resumed after "plan": act and report ran again on top of the restored state.
    assert result["steps"] == ["plan", "act", "report"]
    latest = graph.get_state(config)
    assert latest.values["steps"] == ["plan", "act", "report"]
    assert latest.config["configurable"]["checkpoint_id"] != checkpoint_id
    # The new head descends from the chosen checkpoint: a fork, not the old run's end.
    ancestors: list[str] = []
    snapshot = latest
    while snapshot.parent_config is not None:
        ancestors.append(snapshot.parent_config["configurable"]["checkpoint_id"])
        snapshot = graph.get_state(snapshot.parent_config)
    assert checkpoint_id in ancestors
    assert old_head not in ancestors


def test_async_graphs_are_recorded_too(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    import asyncio

    agent, exporter = agent_and_spans
    checkpoints = LangGraphCheckpoints(agent, langgraph_memory.InMemorySaver())
    graph = build(agent, checkpoints.checkpointer)
    config = {"configurable": {"thread_id": "t-3"}}
    asyncio.run(graph.ainvoke({"steps": []}, config))
    assert agent.force_flush()
    assert len(recorded_checkpoints(exporter)) == len(list(graph.get_state_history(config)))


def test_resume_of_an_unknown_checkpoint_names_it(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, _ = agent_and_spans
    checkpoints = LangGraphCheckpoints(agent, langgraph_memory.InMemorySaver())
    with pytest.raises(LookupError, match="nope"):
        checkpoints.resume(object(), "nope")
