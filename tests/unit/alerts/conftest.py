"""Loopback HTTP receivers, virtual time and anomaly fixtures for the alerts tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """One request a loopback receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1 that records requests and answers from a script.

    ``script`` holds (status, headers) pairs consumed one per request; once empty it answers 200.
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.down = False  # answer 503 to everything
        self._lock = threading.Lock()
        self.received = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                    if receiver.down:
                        status, headers = 503, {}
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                        )
                    )
                    receiver.received.notify_all()
                payload = b"ok"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/hook"

    def respond(self, *responses: tuple[int, dict[str, str]]) -> None:
        with self._lock:
            self.script.extend(responses)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    server = LoopbackReceiver()
    yield server
    server.close()


@pytest.fixture
def slack_server() -> Iterator[LoopbackReceiver]:
    server = LoopbackReceiver()
    yield server
    server.close()


class FakeClock:
    """Virtual time: ``sleep`` records the wait and advances ``time``; nothing really sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def time_ns(self) -> int:
        with self._lock:
            return int(self.now * 1e9)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass(frozen=True)
class FakeAnomaly:
    """Shaped like agentwatch.detectors.Anomaly, without importing the detectors."""

    id: str = "a" * 32
    agent: str = "agent-1"
    service: str = "planner"
    detector: str = "loop"
    score: float = 9.5
    threshold: float = 3.0
    severity: str = "critical"
    onset_ns: int = 1_700_000_000_000_000_000
    detected_ns: int = 1_700_000_001_000_000_000
    evidence: dict[str, Any] = field(default_factory=lambda: {"summary": "same tool call x5"})
    trace_id: str = "0af7651916cd43dd8448eb211c80319c"
    span_id: str = "b7ad6b7169203331"
