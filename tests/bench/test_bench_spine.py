"""Benchmarks of the spine (``make bench``): figures go to the README, never into asserts.

Each prints one line: ``BENCH <name>: <figure> <unit> (<details>)``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import RunningService, request_to_rows
from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind
from agentwatch.sdk import semconv
from tests.support import local_settings


def _request(n_spans: int, n_agents: int, seed: int = 1) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    start = time.time_ns()
    per_agent = max(1, n_spans // n_agents)
    for a in range(n_agents):
        rs = request.resource_spans.add()
        for key, value in (
            (semconv.SERVICE_NAME, f"cohort-{a % 5}"),
            (semconv.SERVICE_INSTANCE_ID, f"agent-{a:05d}"),
        ):
            rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        spans = rs.scope_spans.add().spans
        for i in range(per_agent):
            tool = rng.choice(("web_search", "fetch_page", "summarize", "write_note"))
            span = spans.add(
                trace_id=rng.randbytes(16),
                span_id=rng.randbytes(8),
                name=f"execute_tool {tool}",
                kind=1,
                start_time_unix_nano=start + i * 1_000_000,
                end_time_unix_nano=start + i * 1_000_000 + 500_000,
            )
            for key, value in (
                (semconv.GEN_AI_OPERATION_NAME, semconv.OP_EXECUTE_TOOL),
                (semconv.GEN_AI_TOOL_NAME, tool),
                (semconv.ACTION_FINGERPRINT, f"{rng.getrandbits(64):016x}"),
                (semconv.SIGNAL, semconv.SIGNAL_BEHAVIOR),
            ):
                span.attributes.add(key=key, value=AnyValue(string_value=value))
    return request


def test_bench_decode(capsys: object) -> None:
    """OTLP protobuf bytes -> exporter rows, one core."""
    body = _request(5_000, 50).SerializeToString()
    rounds = 10
    started = time.perf_counter()
    for _ in range(rounds):
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        rows = request_to_rows(request).rows
    elapsed = time.perf_counter() - started
    rate = rounds * len(rows) / elapsed
    print(f"\nBENCH otlp_decode: {rate:,.0f} spans/s (protobuf parse + row mapping, 1 core)")


def test_bench_ingest_http(tmp_path: Path) -> None:
    """OTLP/HTTP -> embedded ClickHouse, end to end, sequential 1,000-span requests."""
    body = _request(1_000, 10).SerializeToString()
    settings = local_settings(tmp_path / "d")
    with RunningService(settings) as running, httpx.Client() as client:
        url = f"{running.otlp_endpoint}/v1/traces"
        headers = {"content-type": "application/x-protobuf"}
        requests = 60
        started = time.perf_counter()
        for _ in range(requests):
            assert client.post(url, content=body, headers=headers).status_code == 200
        accepted = time.perf_counter() - started
        running.service.flush(120)
        stored = time.perf_counter() - started
        total = requests * 1_000
    print(
        f"\nBENCH ingest_http: {total / accepted:,.0f} spans/s accepted, "
        f"{total / stored:,.0f} spans/s stored in ClickHouse "
        f"({requests} sequential requests of 1,000 spans)"
    )


def test_bench_detectors() -> None:
    """All per-agent detectors, one core, many agents."""
    agents = 10_000
    pipeline = DetectorPipeline()
    rng = random.Random(3)
    start = time.time_ns()
    events = [
        AgentEvent(
            agent=f"agent-{i % agents:05d}",
            service="cohort",
            kind=EventKind.ACTION,
            ts_ns=start + i * 100_000,
            key="web_search",
            fingerprint=f"{rng.getrandbits(32):08x}",
        )
        for i in range(300_000)
    ]
    started = time.perf_counter()
    for event in events:
        pipeline.process(event)
    elapsed = time.perf_counter() - started
    print(f"\nBENCH detectors: {len(events) / elapsed:,.0f} events/s over {agents:,} agents")
