"""Every signal of the telemetry contract, as the SDK records it."""

from __future__ import annotations

import asyncio
import math

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from agentwatch.sdk import fingerprint, semconv

from .conftest import AgentFactory, spans_named


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def test_session_is_the_parent_of_everything_inside(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with agent.session("researcher", conversation_id="conv-1"):
        with agent.decision("web_search", options=3):
            pass
        with agent.action("web_search", args={"q": "x"}):
            pass
        agent.transition("planning", "acting")
        agent.goal("answer", 0.5)
        agent.checkpoint("ckpt-1", 4)
        agent.message("writer-2", "send", 120)
    agent.force_flush()

    (session,) = spans_named(exporter, "invoke_agent researcher")
    assert attrs(session) == {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: "researcher",
        semconv.GEN_AI_CONVERSATION_ID: "conv-1",
        semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
    }
    inside = [s for s in exporter.get_finished_spans() if s is not session]
    inside = [s for s in inside if s.name != semconv.SPAN_HEARTBEAT]
    assert {s.name for s in inside} == {
        semconv.SPAN_DECISION,
        "execute_tool web_search",
        semconv.SPAN_STATE_TRANSITION,
        semconv.SPAN_GOAL_PROGRESS,
        semconv.SPAN_CHECKPOINT,
        semconv.SPAN_MESSAGE,
    }
    assert all(parent_id(s) == span_id(session) for s in inside)
    assert {s.context.trace_id for s in inside if s.context} == {session.context.trace_id}  # type: ignore[union-attr]


def test_every_agentwatch_span_carries_its_signal(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with agent.session("s"), agent.decision("a", options=2), agent.action("a"):
        agent.transition("x", "y")
        agent.goal("g", 1.0)
        agent.checkpoint("c", 0)
        agent.message("p", "receive", 0)
    agent.force_flush()
    signals = {s.name: attrs(s)[semconv.SIGNAL] for s in exporter.get_finished_spans()}
    assert signals == {
        "invoke_agent s": semconv.SIGNAL_BEHAVIOR,
        semconv.SPAN_DECISION: semconv.SIGNAL_BEHAVIOR,
        "execute_tool a": semconv.SIGNAL_BEHAVIOR,
        semconv.SPAN_STATE_TRANSITION: semconv.SIGNAL_BEHAVIOR,
        semconv.SPAN_GOAL_PROGRESS: semconv.SIGNAL_HEALTH,
        semconv.SPAN_CHECKPOINT: semconv.SIGNAL_SYSTEM,
        semconv.SPAN_MESSAGE: semconv.SIGNAL_BEHAVIOR,
        semconv.SPAN_HEARTBEAT: semconv.SIGNAL_HEALTH,
    }


def test_instant_signal_attributes(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    agent.transition("planning", "acting")
    agent.goal("answer", 0.25)
    agent.checkpoint("ckpt-9", 12)
    agent.message("writer-2", "send", 2048)
    agent.force_flush()
    (transition,) = spans_named(exporter, semconv.SPAN_STATE_TRANSITION)
    assert attrs(transition)[semconv.STATE_FROM] == "planning"
    assert attrs(transition)[semconv.STATE_TO] == "acting"
    (goal,) = spans_named(exporter, semconv.SPAN_GOAL_PROGRESS)
    assert (attrs(goal)[semconv.GOAL_ID], attrs(goal)[semconv.GOAL_PROGRESS]) == ("answer", 0.25)
    (checkpoint,) = spans_named(exporter, semconv.SPAN_CHECKPOINT)
    assert attrs(checkpoint)[semconv.CHECKPOINT_ID] == "ckpt-9"
    assert attrs(checkpoint)[semconv.CHECKPOINT_STEP] == 12
    (message,) = spans_named(exporter, semconv.SPAN_MESSAGE)
    assert attrs(message)[semconv.MESSAGE_PEER] == "writer-2"
    assert attrs(message)[semconv.MESSAGE_DIRECTION] == "send"
    assert attrs(message)[semconv.MESSAGE_BYTES] == 2048


def test_decision_choice_can_come_at_the_end(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with agent.decision(options=4) as decision:
        decision.choose("fetch_page")
    with agent.decision():
        pass
    agent.force_flush()
    chosen, undecided = spans_named(exporter, semconv.SPAN_DECISION)
    assert attrs(chosen)[semconv.DECISION_CHOICE] == "fetch_page"
    assert attrs(chosen)[semconv.DECISION_OPTIONS] == 4
    assert chosen.end_time is not None and chosen.start_time is not None
    assert chosen.end_time >= chosen.start_time
    assert attrs(undecided)[semconv.DECISION_CHOICE] == ""
    assert semconv.DECISION_OPTIONS not in attrs(undecided)


@pytest.mark.parametrize("progress", [-0.1, 1.01, math.nan, math.inf])
def test_goal_progress_must_be_within_0_and_1(make_agent: AgentFactory, progress: float) -> None:
    agent, _ = make_agent()
    with pytest.raises(ValueError, match="progress"):
        agent.goal("g", progress)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a: a.message("p", "sideways", 1), "direction"),
        (lambda a: a.message("p", "send", -1), "size_bytes"),
        (lambda a: a.checkpoint("", 1), "checkpoint_id"),
        (lambda a: a.checkpoint("c", -1), "step"),
        (lambda a: a.decision(options=-1), "options"),
        (lambda a: a.set_status("sleeping"), "status"),
    ],
)
def test_invalid_signal_arguments_name_the_parameter(
    make_agent: AgentFactory, call: object, match: str
) -> None:
    agent, _ = make_agent()
    with pytest.raises(ValueError, match=match):
        call(agent)  # type: ignore[operator]


def test_session_error_is_marked_and_propagates(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with pytest.raises(LookupError), agent.session("s"):
        raise LookupError("no such page")
    agent.force_flush()
    (session,) = spans_named(exporter, "invoke_agent s")
    assert session.status.status_code is StatusCode.ERROR
    assert attrs(session)[semconv.ERROR_TYPE] == "LookupError"


def test_async_scopes_nest_and_record(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()

    async def run() -> None:
        async with agent.session("async-agent", conversation_id="c"):
            async with agent.decision("lookup", options=2):
                await asyncio.sleep(0)
            async with agent.action("lookup", args={"id": 1}) as span:
                assert span.is_recording()
                await asyncio.sleep(0)
            with pytest.raises(KeyError):
                async with agent.action("lookup", args={"id": 2}):
                    raise KeyError("x")

    asyncio.run(run())
    agent.force_flush()
    (session,) = spans_named(exporter, "invoke_agent async-agent")
    ok, failed = spans_named(exporter, "execute_tool lookup")
    (decision,) = spans_named(exporter, semconv.SPAN_DECISION)
    assert parent_id(ok) == parent_id(failed) == parent_id(decision) == span_id(session)
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(ok)[semconv.ACTION_FINGERPRINT] == fingerprint("lookup", {"id": 1})


def test_tool_decorator_wraps_sync_functions(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()

    @agent.tool("web_search")
    def search(query: str, limit: int = 10) -> str:
        return f"{query}:{limit}"

    @agent.tool
    def summarize(text: str) -> int:
        return len(text)

    assert search("cats") == "cats:10"
    assert search(query="cats", limit=10) == "cats:10"
    assert summarize("abc") == 3
    assert search.__name__ == "search"
    agent.force_flush()
    first, second = spans_named(exporter, "execute_tool web_search")
    expected = fingerprint("web_search", {"query": "cats", "limit": 10})
    assert attrs(first)[semconv.ACTION_FINGERPRINT] == expected
    assert attrs(second)[semconv.ACTION_FINGERPRINT] == expected
    assert spans_named(exporter, "execute_tool summarize")


def test_tool_decorator_wraps_async_functions_and_methods(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()

    class Fetcher:
        @agent.tool("fetch_page")
        async def fetch(self, url: str) -> str:
            await asyncio.sleep(0)
            if url == "bad":
                raise ConnectionError(url)
            return url.upper()

    fetcher = Fetcher()
    assert asyncio.run(fetcher.fetch("https://a")) == "HTTPS://A"
    with pytest.raises(ConnectionError):
        asyncio.run(fetcher.fetch("bad"))
    agent.force_flush()
    ok, failed = spans_named(exporter, "execute_tool fetch_page")
    # self is left out, so the fingerprint does not depend on the instance.
    assert attrs(ok)[semconv.ACTION_FINGERPRINT] == fingerprint("fetch_page", {"url": "https://a"})
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)[semconv.ERROR_TYPE] == "ConnectionError"


def test_tool_decorator_with_wrong_arguments_still_raises_typeerror(
    make_agent: AgentFactory,
) -> None:
    agent, exporter = make_agent()

    @agent.tool()
    def lookup(key: str) -> str:
        return key

    with pytest.raises(TypeError):
        lookup("a", "b")  # type: ignore[call-arg]
    agent.force_flush()
    (span,) = spans_named(exporter, "execute_tool lookup")
    assert span.status.status_code is StatusCode.ERROR


def test_status_is_reported_by_heartbeats(make_agent: AgentFactory) -> None:
    agent, _ = make_agent()
    assert agent.status == semconv.STATUS_RUNNING
    agent.set_status(semconv.STATUS_IDLE)
    assert agent.status == semconv.STATUS_IDLE
    agent.set_breaker_state("open")
    assert agent.status == semconv.STATUS_PAUSED  # while the breaker blocks actions
    agent.set_breaker_state("closed")
    assert agent.status == semconv.STATUS_IDLE


def test_a_clean_shutdown_ends_with_a_stopped_heartbeat(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    agent.set_breaker_state("open")  # even a paused agent says it stopped
    agent.shutdown()
    assert agent.status == semconv.STATUS_STOPPED
    beats = [s for s in exporter.get_finished_spans() if s.name == semconv.SPAN_HEARTBEAT]
    assert beats
    assert beats[0].attributes[semconv.AGENT_STATUS] == semconv.STATUS_RUNNING
    assert beats[-1].attributes[semconv.AGENT_STATUS] == semconv.STATUS_STOPPED
