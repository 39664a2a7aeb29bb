"""Remediation latency (issue 6): from the span that completes a loop arriving at the collector
to the signed breaker webhook arriving at the agent's runtime, over many incidents, with
background traffic. Prints ``BENCH`` lines; asserts nothing about figures.

``BENCH_INCIDENTS`` (default 1000) and ``BENCH_BACKGROUND_SPANS_S`` (default 5000) set the
load. The service runs as its own process; one loopback receiver stands in for every agent's
control endpoint (a path per agent), as the SDK's receiver would answer.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import httpx

from agentwatch.collector._inbox import WebhookInbox
from agentwatch.sdk import semconv

from .test_bench_ingest import _serve_with_env
from .test_bench_spine import _request

NS = 1_000_000_000
PROTOBUF = {"content-type": "application/x-protobuf"}


def _spans(agent: str, spans: list[tuple[str, dict[str, str]]], t0_ns: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in ((semconv.SERVICE_NAME, "bench"), (semconv.SERVICE_INSTANCE_ID, agent)):
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    out = rs.scope_spans.add().spans
    for i, (name, attributes) in enumerate(spans):
        span = out.add(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name=name,
            start_time_unix_nano=t0_ns + i * 1_000_000,
            end_time_unix_nano=t0_ns + i * 1_000_000 + 1000,
        )
        for key, value in attributes.items():
            span.attributes.add(key=key, value=AnyValue(string_value=value))
    return request.SerializeToString()


def test_bench_loop_to_breaker_webhook(tmp_path: Path) -> None:
    incidents = int(os.environ.get("BENCH_INCIDENTS", "1000"))
    background = int(os.environ.get("BENCH_BACKGROUND_SPANS_S", "5000"))
    secret = "whsec_" + base64.b64encode(b"agentwatch-bench-remediation-01").decode()
    inbox = WebhookInbox()
    env = {
        semconv.WEBHOOK_SECRET_ENV: secret,
        "AGENTWATCH_BREAKER_MIN_SEVERITY": "warning",  # a loop opens the breaker
    }
    process, otlp, _ = _serve_with_env(tmp_path / "data", env)
    stop = threading.Event()
    sent_background = 0

    def load() -> None:  # paced background traffic from 64 other agents
        nonlocal sent_background
        bodies = [_request(512, 64, seed=i).SerializeToString() for i in range(8)]
        interval = 512 / background
        with httpx.Client(timeout=30) as client:
            next_at, i = time.monotonic(), 0
            while not stop.is_set():
                client.post(f"{otlp}/v1/traces", content=bodies[i % 8], headers=PROTOBUF)
                sent_background += 512
                i += 1
                next_at += interval
                stop.wait(max(0.0, next_at - time.monotonic()))

    agents = [f"bench-agent-{i:04d}" for i in range(incidents)]
    with httpx.Client(timeout=30) as client:
        # Every agent announces its control URL in a heartbeat, as the SDK does at start.
        now = time.time_ns()
        for agent in agents:
            beat = {
                semconv.CONTROL_URL: f"{inbox.url}/{agent}",
                semconv.HEARTBEAT_INTERVAL_S: "3600",
                semconv.HEARTBEAT_SEQ: "0",
            }
            client.post(
                f"{otlp}/v1/traces",
                content=_spans(agent, [(semconv.SPAN_HEARTBEAT, beat)], now),
                headers=PROTOBUF,
            )
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        started_at: dict[str, int] = {}
        bench_started = time.monotonic()
        for agent in agents:
            call = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                semconv.GEN_AI_TOOL_NAME: "search",
                semconv.ACTION_FINGERPRINT: f"{agent}-same",
            }
            body = _spans(agent, [("execute_tool search", call)] * 3, time.time_ns())
            started_at[agent] = time.time_ns()  # the request's arrival, within a millisecond
            client.post(f"{otlp}/v1/traces", content=body, headers=PROTOBUF)
            time.sleep(0.005)  # pacing: about 200 incidents a second, amid the background
        inbox.wait_for(incidents + 0, timeout_s=120)
        elapsed = time.monotonic() - bench_started
    stop.set()
    loader.join(30)
    latencies = []
    for message in inbox.received:
        agent = message.path.rsplit("/", 1)[-1]
        if agent in started_at and message.json().get("type") == "breaker":
            latencies.append((message.at_ns - started_at.pop(agent)) / 1e6)
    process.terminate()
    process.wait(60)
    inbox.close()
    latencies.sort()
    if not latencies:
        print("\nBENCH loop_to_breaker_webhook: no webhook arrived")
        return
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"\nBENCH loop_to_breaker_webhook: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max "
        f"{latencies[-1]:.0f} ms over {len(latencies)} of {incidents} incidents, with "
        f"{sent_background / elapsed:,.0f} background spans/s"
    )
