"""LangChain: real langchain-core tools and callbacks, recorded as actions through the SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentwatch.sdk import Agent, BreakerState, CircuitOpenError, fingerprint, init, semconv

langchain_tools = pytest.importorskip("langchain_core.tools")

from agentwatch.sdk.langchain import (  # noqa: E402  # needs langchain-core, checked above
    AgentwatchCallbackHandler,
    AsyncAgentwatchCallbackHandler,
)

pytestmark = pytest.mark.integration


class LookupFailedError(RuntimeError):
    pass


@pytest.fixture
def agent_and_spans() -> Iterator[tuple[Agent, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with init(
        "researcher",
        instance_id="researcher-1",
        span_exporter=exporter,
        heartbeat_interval_s=3600,
        environ={},
    ) as agent:
        yield agent, exporter


def actions(agent: Agent, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert agent.force_flush()
    prefix = semconv.SPAN_EXECUTE_TOOL_PREFIX + " "
    return [span for span in exporter.get_finished_spans() if span.name.startswith(prefix)]


def test_a_tool_run_is_an_action_current_for_the_tool_body(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, exporter = agent_and_spans
    seen: list[int] = []

    @langchain_tools.tool
    def web_search(query: str, limit: int = 5) -> str:
        """Search the web."""
        seen.append(trace.get_current_span().get_span_context().span_id)
        return f"{limit} results for {query}"

    handler = AgentwatchCallbackHandler(agent)
    out = web_search.invoke({"query": "solar tariffs"}, config={"callbacks": [handler]})
    assert out == "5 results for solar tariffs"

    (span,) = actions(agent, exporter)
    assert span.name == "execute_tool web_search"
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: "web_search",
        semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        # LangChain passes the input as given, without the defaults applied.
        semconv.ACTION_FINGERPRINT: fingerprint("web_search", {"query": "solar tariffs"}),
    }
    assert span.context is not None
    assert seen == [span.context.span_id]
    assert not trace.get_current_span().get_span_context().is_valid  # restored after the run
    assert handler.runs_in_flight == 0


def test_a_tool_call_records_its_id_and_identical_calls_share_a_fingerprint(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, exporter = agent_and_spans

    @langchain_tools.tool
    def fetch_page(url: str) -> str:
        """Fetch a page."""
        return "<html/>"

    handler = AgentwatchCallbackHandler(agent)
    for call_id in ("call_1", "call_2"):
        message = fetch_page.invoke(
            {
                "name": "fetch_page",
                "args": {"url": "u"},
                "id": call_id,
                "type": "tool_call",
            },
            config={"callbacks": [handler]},
        )
        assert message.tool_call_id == call_id

    first, second = actions(agent, exporter)
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert second.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_2"
    assert first.attributes[semconv.ACTION_FINGERPRINT] == fingerprint("fetch_page", {"url": "u"})
    assert (
        first.attributes[semconv.ACTION_FINGERPRINT]
        == second.attributes[semconv.ACTION_FINGERPRINT]
    )


def test_a_string_input_is_fingerprinted_as_input(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, exporter = agent_and_spans

    def shout(text: str) -> str:
        return text.upper()

    tool = langchain_tools.Tool(name="shout", description="Shout.", func=shout)
    assert tool.invoke("hey", config={"callbacks": [AgentwatchCallbackHandler(agent)]}) == "HEY"
    (span,) = actions(agent, exporter)
    assert span.attributes is not None
    assert span.attributes[semconv.ACTION_FINGERPRINT] == fingerprint("shout", {"input": "hey"})


def test_a_failing_tool_marks_its_action_and_the_error_propagates(
    agent_and_spans: tuple[Agent, InMemorySpanExporter],
) -> None:
    agent, exporter = agent_and_spans

    @langchain_tools.tool
    def lookup(key: str) -> str:
        """Look a key up."""
        raise LookupFailedError(key)

    handler = AgentwatchCallbackHandler(agent)
    with pytest.raises(LookupFailedError):
        lookup.invoke({"key": "k"}, config={"callbacks": [handler]})
    (span,) = actions(agent, exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes[semconv.ERROR_TYPE] == f"{__name__}.LookupFailedError"
    assert handler.runs_in_flight == 0


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.FORCED_OPEN])
def test_an_open_breaker_stops_the_tool_before_it_runs(
    agent_and_spans: tuple[Agent, InMemorySpanExporter], state: BreakerState
) -> None:
    agent, exporter = agent_and_spans
    ran: list[str] = []

    @langchain_tools.tool
    def web_search(query: str) -> str:
        """Search the web."""
        ran.append(query)
        return "results"

    handler = AgentwatchCallbackHandler(agent)
    agent.set_breaker_state(state, reason="loop detected", anomaly_id="an_1")
    with pytest.raises(CircuitOpenError) as info:
        web_search.invoke({"query": "q"}, config={"callbacks": [handler]})
    assert (info.value.state, info.value.anomaly_id) == (state, "an_1")
    assert ran == []
    assert actions(agent, exporter) == []

    agent.set_breaker_state(BreakerState.CLOSED)
    assert web_search.invoke({"query": "q"}, config={"callbacks": [handler]}) == "results"
    assert ran == ["q"]
    assert len(actions(agent, exporter)) == 1


@pytest.mark.parametrize(
    "handler_class", [AgentwatchCallbackHandler, AsyncAgentwatchCallbackHandler]
)
def test_async_tool_runs_are_actions_too(
    agent_and_spans: tuple[Agent, InMemorySpanExporter], handler_class: Any
) -> None:
    agent, exporter = agent_and_spans
    seen: list[int] = []

    @langchain_tools.tool
    async def summarise(text: str) -> str:
        """Summarise a text."""
        await asyncio.sleep(0)
        seen.append(trace.get_current_span().get_span_context().span_id)
        return text[:3]

    handler = handler_class(agent)

    async def run() -> list[str]:
        return list(
            await asyncio.gather(
                summarise.ainvoke({"text": "abcdef"}, config={"callbacks": [handler]}),
                summarise.ainvoke({"text": "uvwxyz"}, config={"callbacks": [handler]}),
            )
        )

    assert asyncio.run(run()) == ["abc", "uvw"]
    spans = actions(agent, exporter)
    assert sorted(span.context.span_id for span in spans if span.context) == sorted(seen)
    assert {(span.attributes or {}).get(semconv.ACTION_FINGERPRINT) for span in spans} == {
        fingerprint("summarise", {"text": "abcdef"}),
        fingerprint("summarise", {"text": "uvwxyz"}),
    }
    assert handler.runs_in_flight == 0


def test_the_async_handler_waits_for_the_breaker_in_pause_mode() -> None:
    exporter = InMemorySpanExporter()
    with init(
        "researcher",
        instance_id="researcher-2",
        span_exporter=exporter,
        heartbeat_interval_s=3600,
        breaker_mode="pause",
        breaker_pause_timeout_s=30,
        environ={},
    ) as agent:

        @langchain_tools.tool
        async def web_search(query: str) -> str:
            """Search the web."""
            return "results"

        handler = AsyncAgentwatchCallbackHandler(agent)
        agent.set_breaker_state(BreakerState.OPEN)

        async def run() -> str:
            call = asyncio.create_task(
                web_search.ainvoke({"query": "q"}, config={"callbacks": [handler]})
            )
            # The loop stays free while the tool run waits: this task gets to close the breaker.
            for _ in range(100):
                await asyncio.sleep(0)
            assert not call.done()
            agent.set_breaker_state(BreakerState.CLOSED)
            return str(await asyncio.wait_for(call, 30))

        assert asyncio.run(run()) == "results"
        assert len(actions(agent, exporter)) == 1
