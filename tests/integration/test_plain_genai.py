"""Plain OpenTelemetry GenAI spans, without the agentwatch SDK, are detected per agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentwatch.collector import RunningService
from tests.support import local_settings

pytestmark = pytest.mark.integration
NS = 1_000_000_000


def _provider(endpoint: str, instance: str) -> TracerProvider:
    resource = Resource.create({"service.name": "langchain-agent", "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    return provider


def _tool_call(provider: TracerProvider, at_ns: int, arguments: str) -> None:
    # Attribute keys spelled as a third-party GenAI instrumentation would, on purpose.
    span = provider.get_tracer("openinference").start_span(
        "execute_tool search",
        start_time=at_ns,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search",
            "gen_ai.tool.call.arguments": arguments,
        },
    )
    span.end(end_time=at_ns + 5_000_000)


def test_plain_genai_tool_spans_are_detected_per_agent(tmp_path: Path) -> None:
    with RunningService(local_settings(tmp_path / "d")) as running:
        looping = _provider(running.otlp_endpoint, "lc-1")
        steady = _provider(running.otlp_endpoint, "lc-2")
        t0 = 1_800_000_000 * NS
        for s in range(20):  # both agents: normal, varied calls at 2 per second
            for k in range(2):
                for provider, name in ((looping, "lc-1"), (steady, "lc-2")):
                    _tool_call(provider, t0 + s * NS + k * NS // 2, f'{{"q": "{name}-{s}-{k}"}}')
        for k in range(3):  # then lc-1 repeats the very same call
            _tool_call(looping, t0 + 21 * NS + k * 100_000_000, '{"q": "same"}')
        for k in range(40):  # and floods
            _tool_call(looping, t0 + 22 * NS + k * 10_000_000, f'{{"q": "flood-{k}"}}')
        looping.shutdown()
        steady.shutdown()
        assert running.service.flush(10)
        found = {(a["agent"], a["detector"]) for a in running.service.anomalies()}
        assert ("lc-1", "loop") in found
        assert ("lc-1", "action_rate") in found
        assert not any(agent == "lc-2" for agent, _ in found)
