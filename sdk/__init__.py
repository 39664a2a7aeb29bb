"""agentwatch.sdk: instrument an AI agent and obey the service's control webhooks.

Contract:

- ``init(service_name, ...)`` returns an :class:`Agent` with its own OpenTelemetry
  ``TracerProvider`` (the global one is untouched), exporting OTLP/HTTP in batches every 200 ms
  by default. Settings: explicit argument, then ``AGENTWATCH_*`` / standard ``OTEL_*``
  environment variables, then defaults (:class:`SdkSettings`), read at ``init``, never at import.
- Every signal of the telemetry contract: ``agent.session(name)`` (``invoke_agent``, parent of
  what runs inside), ``agent.action(tool, args)`` and ``@agent.tool(...)`` (``execute_tool``
  with a stable :func:`fingerprint` of the arguments), ``agent.decision(...)`` (duration =
  latency), ``agent.transition``, ``agent.goal``, ``agent.checkpoint``, ``agent.message``; the
  scopes work with ``with`` and ``async with``, the decorator on sync and async functions.
- The guard: while the breaker is ``OPEN`` or ``FORCED_OPEN`` an action raises
  :class:`CircuitOpenError` before any span (``raise`` mode), or first waits for the breaker
  to let actions through, up to a timeout (``pause`` mode, :class:`BreakerMode`).
- Spans go through a batching processor sized for 1,000 actions/s with no drops; actions are
  never dropped silently (:class:`ExportStats`), heartbeats are sampled first under pressure.
- A heartbeat thread emits ``agentwatch.heartbeat`` at start and every interval, carrying
  health figures, status and the agent's control URL.
- With a webhook secret (several, comma-separated, during key rotation), a control receiver
  accepts Standard Webhooks-signed ``POST /control`` requests (:class:`WebhookVerifier`),
  idempotent by webhook-id: breaker changes, rollbacks (``@agent.on_rollback``) and failovers
  (``@agent.on_failover``); as a thread server or as an ASGI app (``agent.asgi_app()``).
- With ``AGENTWATCH_API_URL``, a poller reconciles the same control state from the service
  API (the pull fallback), idempotently with the webhooks.
- ``agentwatch.sdk.langgraph`` records LangGraph checkpoints and resumes threads on rollback.
- ``agentwatch.sdk.langchain`` records LangChain tool runs as guarded actions (a callback
  handler; importing it needs ``langchain-core``).
- The SDK never raises into the agent except :class:`CircuitOpenError`; failures of export and
  heartbeat are logged once and counted. All errors raised on purpose derive from
  :class:`AgentwatchError`.
- Imports only OpenTelemetry and the standard library, and only lazily: importing
  ``agentwatch.sdk`` or ``agentwatch.sdk.semconv`` loads no OpenTelemetry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentwatch.sdk._agent import Agent
    from agentwatch.sdk._breaker import BreakerMode, BreakerState
    from agentwatch.sdk._errors import (
        AgentwatchError,
        CircuitOpenError,
        WebhookVerificationError,
    )
    from agentwatch.sdk._fingerprint import fingerprint
    from agentwatch.sdk._processor import ExportStats
    from agentwatch.sdk._settings import SdkSettings
    from agentwatch.sdk._setup import init
    from agentwatch.sdk._webhooks import WebhookVerifier

__all__ = [
    "Agent",
    "AgentwatchError",
    "BreakerMode",
    "BreakerState",
    "CircuitOpenError",
    "ExportStats",
    "SdkSettings",
    "WebhookVerificationError",
    "WebhookVerifier",
    "fingerprint",
    "init",
]

# Public name -> private module defining it; loaded on first access (PEP 562), so that the
# service can import agentwatch.sdk.semconv without pulling in OpenTelemetry.
_LAZY = {
    "Agent": "_agent",
    "AgentwatchError": "_errors",
    "BreakerMode": "_breaker",
    "BreakerState": "_breaker",
    "CircuitOpenError": "_errors",
    "ExportStats": "_processor",
    "SdkSettings": "_settings",
    "WebhookVerificationError": "_errors",
    "WebhookVerifier": "_webhooks",
    "fingerprint": "_fingerprint",
    "init": "_setup",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
