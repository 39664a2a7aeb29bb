"""Benchmarks of the SDK (``make bench``): figures go to the README, never into asserts.

Each prints one line: ``BENCH <name>: <figure> <unit> (<details>)``. Spans go through the real
OTLP/HTTP exporter to a loopback receiver that answers 200 and counts the spans it decodes.

    .venv/bin/python -m pytest tests/bench/test_bench_sdk.py -p no:cacheprovider -s
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agentwatch.sdk import Agent, init, semconv

ARGS = {"query": "latest results on solar tariffs", "limit": 10, "lang": "en"}


class Receiver:
    """A minimal OTLP/HTTP trace receiver on 127.0.0.1 counting ``execute_tool`` spans."""

    def __init__(self) -> None:
        self.actions = 0
        self.spans = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                actions = spans = 0
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans += 1
                            actions += span.name.startswith(semconv.SPAN_EXECUTE_TOOL_PREFIX)
                with receiver.lock:
                    receiver.actions += actions
                    receiver.spans += spans
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.actions = self.spans = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _agent(receiver: Receiver) -> Agent:
    return init(
        "bench-agent",
        instance_id="bench-agent-1",
        endpoint=receiver.endpoint,
        heartbeat_interval_s=1,
        environ={},
    )


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    samples_ns.sort()
    p50 = samples_ns[len(samples_ns) // 2] / 1000
    p99 = samples_ns[int(len(samples_ns) * 0.99)] / 1000
    return p50, p99


def test_bench_action_cost(receiver: Receiver) -> None:
    """The whole cost of one ``with agent.action(...)`` in the agent's thread."""
    n = 20_000
    agent = _agent(receiver)
    try:
        for _ in range(1_000):  # warm-up
            with agent.action("web_search", ARGS):
                pass
        samples: list[int] = []
        clock = time.perf_counter_ns
        for i in range(n):
            started = clock()
            with agent.action("web_search", ARGS, call_id="c"):
                pass
            samples.append(clock() - started)
            if i % 500 == 499:
                time.sleep(0.05)  # ~10k/s on average: let the exporter keep up, as in life
        agent.force_flush(30_000)
    finally:
        agent.shutdown()
    p50, p99 = _percentiles(samples)
    print(f"\nBENCH sdk_action_p50: {p50:.1f} us (breaker guard + fingerprint + span + queue)")
    print(f"BENCH sdk_action_p99: {p99:.1f} us ({n} actions, OTLP/HTTP exporter running)")

    # The same span with bare OpenTelemetry (same attributes, no guard, no fingerprint).
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer("bench")
    attributes = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: "web_search",
        semconv.ACTION_FINGERPRINT: "0123456789abcdef",
        semconv.SIGNAL: semconv.SIGNAL_BEHAVIOR,
        semconv.GEN_AI_TOOL_CALL_ID: "c",
    }
    bare: list[int] = []
    for i in range(n):
        started = time.perf_counter_ns()
        with tracer.start_as_current_span("execute_tool web_search", attributes=attributes):
            pass
        bare.append(time.perf_counter_ns() - started)
        if i % 500 == 499:
            time.sleep(0.05)
    provider.shutdown()
    b50, b99 = _percentiles(bare)
    print(f"BENCH otel_bare_span_p50: {b50:.1f} us (p99 {b99:.1f} us; for comparison)")


def _paced(agent: Agent, rate: int, seconds: float) -> int:
    """Record actions at ``rate``/s for ``seconds``; return how many were recorded."""
    total = int(rate * seconds)
    started = time.perf_counter()
    for i in range(total):
        due = started + i / rate
        ahead = due - time.perf_counter()
        if ahead > 0.002:
            time.sleep(ahead)
        with agent.action("web_search", {"query": "q", "i": i % 50}):
            pass
    return total


@pytest.mark.parametrize("rate", [1_000, 5_000])
def test_bench_dropped_actions(receiver: Receiver, rate: int) -> None:
    """Actions sent at a steady rate vs. actions the receiver decoded."""
    receiver.reset()
    agent = _agent(receiver)
    try:
        started = time.perf_counter()
        sent = _paced(agent, rate, seconds=5.0)
        elapsed = time.perf_counter() - started
        agent.force_flush(60_000)
        stats = agent.export_stats()
    finally:
        agent.shutdown()
    with receiver.lock:
        received = receiver.actions
    lost = sent - received
    print(
        f"\nBENCH sdk_dropped_actions_at_{rate}_per_s: {lost} of {sent} "
        f"(achieved {sent / elapsed:,.0f}/s; queue drops {stats.dropped_actions}, "
        f"export failures {stats.export_failed}, heartbeats sampled {stats.sampled_heartbeats})"
    )


def test_bench_dropped_spans_with_otel_defaults(receiver: Receiver) -> None:
    """For contrast: bare OpenTelemetry with BatchSpanProcessor's defaults at 5,000/s."""
    receiver.reset()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer("bench")
    rate, total = 5_000, 25_000
    started = time.perf_counter()
    for i in range(total):
        ahead = started + i / rate - time.perf_counter()
        if ahead > 0.002:
            time.sleep(ahead)
        with tracer.start_as_current_span("execute_tool web_search"):
            pass
    provider.force_flush(60_000)
    provider.shutdown()
    with receiver.lock:
        received = receiver.actions
    print(
        f"\nBENCH otel_defaults_dropped_at_5000_per_s: {total - received} of {total} "
        "(BatchSpanProcessor defaults: 2048 queue, 5 s delay)"
    )
