"""Fixtures for the SDK tests: agents on in-memory exporters, and a local webhook signer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.sdk import Agent, init, semconv

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

AgentFactory = Callable[..., tuple[Agent, InMemorySpanExporter]]


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks ``v1`` signature, written independently of the SDK's verifier."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(
    body: bytes, *, webhook_id: str, timestamp: int, secret: str = SECRET
) -> dict[str, str]:
    return {
        semconv.WEBHOOK_ID_HEADER: webhook_id,
        semconv.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        semconv.WEBHOOK_SIGNATURE_HEADER: sign(secret, webhook_id, timestamp, body),
    }


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


@pytest.fixture
def make_agent() -> Iterator[AgentFactory]:
    """Build agents exporting to an InMemorySpanExporter; shut them all down afterwards."""
    agents: list[Agent] = []

    def factory(
        service_name: str = "researcher", **kwargs: Any
    ) -> tuple[Agent, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        kwargs.setdefault("environ", {})
        agent = init(service_name, span_exporter=exporter, **kwargs)
        agents.append(agent)
        return agent, exporter

    yield factory
    for agent in agents:
        agent.shutdown()
