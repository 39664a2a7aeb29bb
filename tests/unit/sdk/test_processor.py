"""The span processor: no silent action drops, heartbeats shed first, drops counted."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentwatch.sdk import SdkSettings, init, semconv
from agentwatch.sdk._processor import HEARTBEAT_QUEUE_SIZE, PrioritySpanProcessor


class GatedExporter(SpanExporter):
    """Blocks every export until ``gate`` is set, then records the spans."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.gate.wait(30)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def span(name: str) -> ReadableSpan:
    return ReadableSpan(name=name)


def processor(exporter: SpanExporter, queue: int = 100, batch: int = 10) -> PrioritySpanProcessor:
    return PrioritySpanProcessor(
        exporter, max_queue_size=queue, schedule_delay_s=0.05, max_export_batch_size=batch
    )


def test_a_burst_within_the_queue_loses_nothing() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    proc = processor(exporter, queue=5_000, batch=64)
    for i in range(5_000):
        proc.on_end(span(f"execute_tool t{i % 7}"))
    assert proc.force_flush(10_000)
    proc.shutdown()
    assert len(exporter.names) == 5_000
    stats = proc.stats()
    assert (stats.dropped_actions, stats.exported, stats.queued) == (0, 5_000, 0)


def test_a_full_queue_drops_and_counts_new_actions() -> None:
    exporter = GatedExporter()
    proc = processor(exporter, queue=20, batch=5)
    proc.on_end(span("first"))
    proc.on_end(span("x"))
    proc.on_end(span("x"))
    proc.on_end(span("x"))
    proc.on_end(span("x"))  # the 5th wakes the worker, which blocks in export
    assert exporter.entered.wait(10)
    for _ in range(30):
        proc.on_end(span("x"))
    stats = proc.stats()
    assert stats.dropped_actions == 30 - 20
    assert stats.dropped == stats.dropped_actions
    exporter.gate.set()
    assert proc.force_flush(10_000)
    proc.shutdown()
    assert len(exporter.names) == 5 + 20


def test_a_full_batch_wakes_the_worker_before_the_schedule() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    proc = PrioritySpanProcessor(
        exporter, max_queue_size=100, schedule_delay_s=3_600, max_export_batch_size=4
    )
    for _ in range(4):
        proc.on_end(span("execute_tool t"))
    # Only the 4th span's wake-up can start an export within the hour-long schedule.
    assert exporter.entered.wait(10)
    proc.shutdown()
    assert exporter.names == ["execute_tool t"] * 4


def test_heartbeats_are_shed_before_actions_under_pressure() -> None:
    exporter = GatedExporter()
    proc = processor(exporter, queue=100, batch=10)
    for _ in range(10):
        proc.on_end(span("x"))
    assert exporter.entered.wait(10)  # the worker holds 10 spans, blocked
    # Room for heartbeats while the action queue is not pressed...
    assert proc.admits_heartbeat()
    proc.on_end(span(semconv.SPAN_HEARTBEAT))
    assert proc.admits_heartbeat()
    for _ in range(80):
        proc.on_end(span("x"))
    # ...but above 3/4 full only one heartbeat may wait: the next is sampled, not queued.
    assert not proc.admits_heartbeat()
    assert proc.stats().sampled_heartbeats == 1
    assert proc.stats().dropped_actions == 0
    exporter.gate.set()
    assert proc.force_flush(10_000)
    proc.shutdown()
    assert exporter.names.count("x") == 90


def test_the_heartbeat_queue_is_bounded() -> None:
    exporter = GatedExporter()
    proc = processor(exporter, queue=100, batch=1)
    proc.on_end(span("x"))
    assert exporter.entered.wait(10)
    for _ in range(HEARTBEAT_QUEUE_SIZE + 5):
        proc.on_end(span(semconv.SPAN_HEARTBEAT))
    assert not proc.admits_heartbeat()
    stats = proc.stats()
    assert stats.sampled_heartbeats == 5 + 1
    assert stats.queued == HEARTBEAT_QUEUE_SIZE
    exporter.gate.set()
    proc.shutdown()


def test_spans_after_shutdown_are_counted() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    proc = processor(exporter)
    proc.shutdown()
    proc.on_end(span("late"))
    assert proc.stats().dropped_actions == 1
    proc.shutdown()  # idempotent


def test_agent_reports_export_stats() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    with init("svc", span_exporter=exporter, environ={}) as agent:
        for _ in range(50):
            with agent.action("t"):
                pass
        assert agent.force_flush()
        stats = agent.export_stats()
        assert stats.exported >= 51  # 50 actions and the first heartbeat
        assert (stats.dropped_actions, stats.export_failed, agent.dropped_spans) == (0, 0, 0)


def test_batch_settings_come_from_the_environment() -> None:
    env = {"OTEL_BSP_MAX_QUEUE_SIZE": "300", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "400"}
    settings = SdkSettings.from_env(env)
    assert (settings.bsp_max_queue_size, settings.bsp_max_export_batch_size) == (300, 300)
    assert SdkSettings.from_env({}).bsp_max_queue_size == 8192
