from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.sdk import init, semconv
from agentwatch.sdk._heartbeat import ErrorCounter, Heartbeat, memory_usage_bytes

from .conftest import SECRET, AgentFactory, spans_named


class BeatWaiter(SpanExporter):
    """Sets an event once it has seen ``n`` heartbeats and ``errors`` errors (no sleeps)."""

    def __init__(self, n: int, errors: int) -> None:
        self.n = n
        self.errors = errors
        self.beats: list[dict[str, object]] = []
        self.done = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.beats.extend(
            dict(span.attributes or {}) for span in spans if span.name == semconv.SPAN_HEARTBEAT
        )
        seen_errors = sum(int(str(beat[semconv.ERRORS])) for beat in self.beats)
        if len(self.beats) >= self.n and seen_errors >= self.errors:
            self.done.set()
        return SpanExportResult.SUCCESS


def test_first_heartbeat_is_emitted_at_init(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent(heartbeat_interval_s=3600)
    agent.force_flush()
    (beat,) = spans_named(exporter, semconv.SPAN_HEARTBEAT)
    attributes = dict(beat.attributes or {})
    assert attributes[semconv.SIGNAL] == semconv.SIGNAL_HEALTH
    assert attributes[semconv.HEARTBEAT_SEQ] == 0
    assert attributes[semconv.HEARTBEAT_INTERVAL_S] == 3600
    assert attributes[semconv.AGENT_STATUS] == "running"
    assert attributes[semconv.ERRORS] == 0
    cpu = attributes[semconv.PROCESS_CPU_UTILIZATION]
    memory = attributes[semconv.PROCESS_MEMORY_USAGE]
    assert isinstance(cpu, float) and cpu >= 0.0
    assert isinstance(memory, int) and memory > 0
    assert semconv.CONTROL_URL not in attributes  # no receiver without a secret
    assert beat.parent is None


def test_heartbeat_carries_the_control_url(make_agent: AgentFactory) -> None:
    agent, exporter = make_agent(webhook_secret=SECRET)
    agent.force_flush()
    (beat,) = spans_named(exporter, semconv.SPAN_HEARTBEAT)
    assert agent.control_url is not None
    assert agent.control_url.startswith("http://127.0.0.1:")
    assert agent.control_url.endswith("/control")
    assert (beat.attributes or {})[semconv.CONTROL_URL] == agent.control_url


def test_heartbeats_repeat_and_count_errors() -> None:
    waiter = BeatWaiter(3, errors=1)
    agent = init("worker", heartbeat_interval_s=0.01, span_exporter=waiter, environ={})
    try:
        with pytest.raises(ValueError), agent.action("fail"):
            raise ValueError("x")
        assert waiter.done.wait(10)
    finally:
        agent.shutdown()
    seqs = [beat[semconv.HEARTBEAT_SEQ] for beat in waiter.beats]
    assert seqs == list(range(len(seqs)))
    assert [beat[semconv.ERRORS] for beat in waiter.beats].count(1) == 1


def test_beat_measures_cpu_and_drains_errors() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    wall, cpu = [100.0], [10.0]
    errors = ErrorCounter()
    heartbeat = Heartbeat(
        tracer=provider.get_tracer("test"),
        interval_s=5,
        errors=errors,
        control_url="http://127.0.0.1:1/control",
        wall_clock=lambda: wall[0],
        cpu_clock=lambda: cpu[0],
        memory=lambda: None,
    )
    wall[0], cpu[0] = 102.0, 11.0  # 1 CPU-second over 2 wall seconds
    errors.add(2)
    heartbeat.beat()
    heartbeat.beat()  # no time passed: utilization 0, errors drained
    provider.shutdown()
    first, second = (dict(span.attributes or {}) for span in exporter.get_finished_spans())
    assert first[semconv.PROCESS_CPU_UTILIZATION] == pytest.approx(0.5 / heartbeat._cpus)
    assert first[semconv.ERRORS] == 2
    assert semconv.PROCESS_MEMORY_USAGE not in first
    assert second[semconv.HEARTBEAT_SEQ] == 1
    assert second[semconv.PROCESS_CPU_UTILIZATION] == 0.0
    assert second[semconv.ERRORS] == 0


def test_failing_beat_is_counted_not_raised() -> None:
    def broken_memory() -> int:
        raise OSError("no /proc")

    provider = TracerProvider(shutdown_on_exit=False)
    heartbeat = Heartbeat(
        tracer=provider.get_tracer("test"),
        interval_s=5,
        errors=ErrorCounter(),
        memory=broken_memory,
    )
    heartbeat.beat()
    heartbeat.beat()
    provider.shutdown()
    assert heartbeat.failures == 2


def test_memory_usage_is_positive() -> None:
    usage = memory_usage_bytes()
    assert usage is not None and usage > 0
