from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentwatch.sdk import init
from agentwatch.sdk._exporter import GuardedSpanExporter


class FlakyExporter(SpanExporter):
    def __init__(self, results: list[SpanExportResult | Exception]) -> None:
        self.results = results
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        result = self.results.pop(0) if self.results else SpanExportResult.SUCCESS
        if isinstance(result, Exception):
            raise result
        return result


SPANS: list[ReadableSpan] = [ReadableSpan(name="a"), ReadableSpan(name="b")]


def test_failures_are_counted_never_raised() -> None:
    inner = FlakyExporter([RuntimeError("network"), SpanExportResult.FAILURE])
    guarded = GuardedSpanExporter(inner)
    assert guarded.export(SPANS) is SpanExportResult.FAILURE
    assert guarded.export(SPANS) is SpanExportResult.FAILURE
    assert guarded.export(SPANS) is SpanExportResult.SUCCESS
    assert guarded.dropped_spans == 4


def test_past_the_deadline_a_failing_exporter_is_skipped() -> None:
    now = [0.0]
    inner = FlakyExporter([SpanExportResult.FAILURE] * 10)
    guarded = GuardedSpanExporter(inner, clock=lambda: now[0])
    with guarded.deadline(1.0):
        guarded.export(SPANS)  # fails, before the deadline: tried
        now[0] = 2.0
        assert guarded.export(SPANS) is SpanExportResult.FAILURE  # skipped
    assert inner.calls == 1
    assert guarded.dropped_spans == 4
    guarded.export(SPANS)  # outside the block: tried again
    assert inner.calls == 2


def test_past_the_deadline_a_healthy_exporter_is_still_used() -> None:
    now = [0.0]
    inner = FlakyExporter([])
    guarded = GuardedSpanExporter(inner, clock=lambda: now[0])
    with guarded.deadline(1.0):
        now[0] = 2.0
        assert guarded.export(SPANS) is SpanExportResult.SUCCESS
    assert inner.calls == 1


def test_agent_force_flush_reports_failed_exports() -> None:
    inner = FlakyExporter([SpanExportResult.FAILURE])
    with init("svc", span_exporter=inner, environ={}) as agent:
        assert agent.force_flush() is False  # the first heartbeat was dropped
        assert agent.dropped_spans == 1
        with agent.action("t"):
            pass
        assert agent.force_flush() is True
