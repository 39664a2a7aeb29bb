from __future__ import annotations

import pickle
import threading

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch.sdk import AgentwatchError, BreakerState, CircuitOpenError, fingerprint, semconv

from .conftest import AgentFactory, spans_named


class ToolFailedError(RuntimeError):
    pass


def test_action_emits_execute_tool_span(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent(instance_id="researcher-1")
    args = {"query": "weather", "limit": 3}
    with agent.action("web_search", args=args, call_id="call_7") as span:
        assert span.is_recording()
    assert agent.force_flush()

    (recorded,) = spans_named(exporter, "execute_tool web_search")
    assert recorded.kind is SpanKind.INTERNAL
    assert recorded.status.status_code is StatusCode.UNSET
    assert dict(recorded.attributes or {}) == {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: "web_search",
        semconv.ACTION_FINGERPRINT: fingerprint("web_search", args),
        semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        semconv.GEN_AI_TOOL_CALL_ID: "call_7",
    }
    assert recorded.resource.attributes[semconv.SERVICE_NAME] == "researcher"
    assert recorded.resource.attributes[semconv.SERVICE_INSTANCE_ID] == "researcher-1"


def test_failed_action_marks_span_error_and_reraises(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    error = ToolFailedError("boom")
    with pytest.raises(ToolFailedError) as info, agent.action("web_fetch"):
        raise error
    assert info.value is error
    agent.force_flush()

    (recorded,) = spans_named(exporter, "execute_tool web_fetch")
    assert recorded.status.status_code is StatusCode.ERROR
    assert recorded.attributes is not None
    assert recorded.attributes[semconv.ERROR_TYPE] == f"{__name__}.ToolFailedError"
    assert semconv.GEN_AI_TOOL_CALL_ID not in recorded.attributes


def test_builtin_exception_error_type_is_its_name(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with pytest.raises(KeyError), agent.action("lookup"):
        raise KeyError("x")
    agent.force_flush()
    (recorded,) = spans_named(exporter, "execute_tool lookup")
    assert recorded.attributes is not None
    assert recorded.attributes[semconv.ERROR_TYPE] == "KeyError"


def test_nested_spans_are_children_of_the_action(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with agent.action("outer"), agent.action("inner"):
        pass
    agent.force_flush()
    (outer,) = spans_named(exporter, "execute_tool outer")
    (inner,) = spans_named(exporter, "execute_tool inner")
    assert inner.parent is not None
    assert outer.context is not None
    assert inner.parent.span_id == outer.context.span_id


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.FORCED_OPEN])
def test_open_breaker_blocks_actions_before_any_span(
    make_agent: AgentFactory, state: BreakerState
) -> None:
    agent, exporter = make_agent(instance_id="a-1")
    agent.set_breaker_state(state, reason="loop detected", anomaly_id="an_1")
    body_ran = False
    with pytest.raises(CircuitOpenError) as info, agent.action("web_search"):
        body_ran = True
    assert not body_ran
    error = info.value
    assert isinstance(error, AgentwatchError)
    assert (error.agent, error.state, error.reason, error.anomaly_id) == (
        "a-1",
        state,
        "loop detected",
        "an_1",
    )
    assert "loop detected" in str(error)
    assert pickle.loads(pickle.dumps(error)).state is state
    agent.force_flush()
    assert spans_named(exporter, "execute_tool web_search") == []


@pytest.mark.parametrize("state", [BreakerState.CLOSED, BreakerState.HALF_OPEN])
def test_closed_and_half_open_breaker_allow_actions(
    make_agent: AgentFactory, state: BreakerState
) -> None:
    agent, _ = make_agent()
    agent.set_breaker_state(state)
    with agent.action("probe"):
        pass
    assert agent.breaker_state is state


def test_the_guard_follows_every_breaker_change(make_agent: AgentFactory) -> None:
    # The guard's fast path reads a flag beside the state: it must never go stale.
    agent, exporter = make_agent()
    sequence = [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.FORCED_OPEN,
        BreakerState.CLOSED,
        BreakerState.OPEN,
        BreakerState.CLOSED,
    ]
    allowed: list[bool] = []
    for state in sequence:
        agent.set_breaker_state(state)
        try:
            with agent.action(f"after_{state.value}"):
                pass
        except CircuitOpenError:
            allowed.append(False)
        else:
            allowed.append(True)
    assert allowed == [False, True, False, True, False, True]
    agent.force_flush()
    assert len(spans_named(exporter, "execute_tool after_closed")) == 2
    assert spans_named(exporter, "execute_tool after_open") == []


def test_breaker_values_are_the_wire_values() -> None:
    assert [state.value for state in BreakerState] == [
        semconv.BREAKER_CLOSED,
        semconv.BREAKER_OPEN,
        semconv.BREAKER_HALF_OPEN,
        semconv.BREAKER_FORCED_OPEN,
    ]


def test_breaker_listeners_see_every_change(make_agent: AgentFactory) -> None:
    agent, _ = make_agent()
    changes: list[tuple[BreakerState, str, str]] = []

    def failing_listener(state: BreakerState, reason: str, anomaly_id: str) -> None:
        raise RuntimeError("listener bug")

    agent.add_breaker_listener(failing_listener)
    agent.add_breaker_listener(lambda *change: changes.append(change))
    agent.set_breaker_state("open", reason="spike", anomaly_id="an_2")
    agent.set_breaker_state(BreakerState.OPEN, reason="spike again")  # not a change
    agent.set_breaker_state(BreakerState.CLOSED)
    assert changes == [(BreakerState.OPEN, "spike", "an_2"), (BreakerState.CLOSED, "", "")]


def test_invalid_breaker_state_is_refused(make_agent: AgentFactory) -> None:
    agent, _ = make_agent()
    with pytest.raises(ValueError):
        agent.set_breaker_state("ajar")
    assert agent.breaker_state is BreakerState.CLOSED


def test_actions_from_many_threads(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(25):
            with agent.action("work"):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    agent.force_flush()
    assert len(spans_named(exporter, "execute_tool work")) == 200


def test_generated_instance_id_and_identity(make_agent: AgentFactory) -> None:
    agent, _ = make_agent("planner")
    assert agent.service_name == "planner"
    assert agent.instance_id.startswith("planner-")
    assert len(agent.instance_id) == len("planner-") + 8
    assert agent.control_url is None  # no webhook secret: no receiver
    assert "planner" in repr(agent)


def test_instance_id_from_resource_attributes(make_agent: AgentFactory) -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=from-env,team=search%20ops"}
    agent, exporter = make_agent(environ=env)
    agent.force_flush()
    assert agent.instance_id == "from-env"
    resource = exporter.get_finished_spans()[0].resource
    assert resource.attributes["team"] == "search ops"


def test_agents_do_not_share_providers(make_agent: AgentFactory) -> None:
    first, first_exporter = make_agent(instance_id="a-1")
    second, second_exporter = make_agent(instance_id="a-2")
    with first.action("only_first"):
        pass
    first.force_flush()
    second.force_flush()
    assert spans_named(first_exporter, "execute_tool only_first")
    assert not spans_named(second_exporter, "execute_tool only_first")


def test_shutdown_is_idempotent_and_context_manager_works(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent()
    with agent, agent.action("last"):
        pass
    # shutdown flushed what was queued
    assert spans_named(exporter, "execute_tool last")
    agent.shutdown()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_interval_s": 0},
        {"heartbeat_interval_s": float("inf")},
        {"control_port": 70000},
        {"webhook_secret": "whsec_***"},
    ],
)
def test_invalid_explicit_arguments_fail_fast(
    make_agent: AgentFactory, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        make_agent(**kwargs)


def test_empty_service_name_fails_fast(make_agent: AgentFactory) -> None:
    with pytest.raises(ValueError, match="service_name"):
        make_agent("")
