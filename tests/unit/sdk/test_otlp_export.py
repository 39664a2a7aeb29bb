"""The real OTLP/HTTP exporter, against a loopback server standing in for the collector."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentwatch.sdk import init, semconv


class _Collector(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, bytes]]
    received: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.received.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[type[_Collector]]:
    handler = type("Handler", (_Collector,), {"requests": [], "received": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    handler.port = server.server_address[1]  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_spans_reach_the_otlp_endpoint_from_the_environment(
    collector: type[_Collector],
) -> None:
    port = collector.port  # type: ignore[attr-defined]
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    with init("svc", instance_id="svc-1", environ=env) as agent:
        with agent.action("web_search", args={"q": "x"}):
            pass
        assert agent.force_flush(10_000)
        assert agent.dropped_spans == 0
    assert collector.received.is_set()
    paths = {path for path, _ in collector.requests}
    assert paths == {"/v1/traces"}
    names: set[str] = set()
    for _, body in collector.requests:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            assert resource[semconv.SERVICE_INSTANCE_ID] == "svc-1"
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert {semconv.SPAN_HEARTBEAT, "execute_tool web_search"} <= names
