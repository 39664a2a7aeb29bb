"""``init()``: build one agent's tracer provider, exporter, heartbeat and control receiver."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import uuid
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from agentwatch.sdk import semconv
from agentwatch.sdk._agent import Agent
from agentwatch.sdk._breaker import BreakerMode
from agentwatch.sdk._exporter import GuardedSpanExporter
from agentwatch.sdk._processor import PrioritySpanProcessor
from agentwatch.sdk._settings import SdkSettings, resolve_traces_endpoint
from agentwatch.sdk._webhooks import WebhookVerifier

logger = logging.getLogger(__name__)


def init(
    service_name: str,
    instance_id: str | None = None,
    endpoint: str | None = None,
    *,
    heartbeat_interval_s: float | None = None,
    webhook_secret: str | Sequence[str] | None = None,
    control_host: str | None = None,
    control_port: int | None = None,
    control_server: bool = True,
    control_url: str | None = None,
    breaker_mode: str | None = None,
    breaker_pause_timeout_s: float | None = None,
    api_url: str | None = None,
    api_token: str | None = None,
    control_poll_interval_s: float | None = None,
    span_exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> Agent:
    """Instrument one agent instance and start its heartbeat (and control receiver).

    Each call builds its own ``TracerProvider``, so many agents can live in one process; the
    global provider is left alone. Every setting is: explicit argument, else environment
    variable, else default (see :class:`SdkSettings`); a bad environment value is logged and
    replaced by its default.

    Blocks briefly (binds a socket, emits the first heartbeat); the returned handle is
    thread-safe. Use it as a context manager, or call :meth:`Agent.shutdown`.

    Args:
        service_name: The agent type, its cohort (``service.name``).
        instance_id: This instance (``service.instance.id``); else ``service.instance.id`` from
            ``OTEL_RESOURCE_ATTRIBUTES``; else ``f"{service_name}-<8 hex digits>"``.
        endpoint: Base URL of the OTLP/HTTP receiver (``http://127.0.0.1:4318``); else
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, or
            ``http://localhost:4318``.
        heartbeat_interval_s: Seconds between heartbeats (default 5).
        webhook_secret: Standard Webhooks secret (``whsec_...``), or several accepted ones (a
            sequence, or comma-separated as in ``AGENTWATCH_WEBHOOK_SECRET``) to rotate keys;
            without one no control receiver runs.
        control_host: Address of the control receiver (default ``127.0.0.1``).
        control_port: Its port (default 0: an ephemeral port).
        control_server: Run the thread server; False when only :meth:`Agent.asgi_app` serves.
        control_url: The control URL heartbeats advertise instead of the thread server's
            (``AGENTWATCH_CONTROL_URL``): where the ASGI app is mounted, or a NAT'd address.
        breaker_mode: ``"raise"`` (default; a blocked action raises at once) or ``"pause"``
            (it waits for the breaker to let actions through), ``AGENTWATCH_BREAKER_MODE``.
        breaker_pause_timeout_s: Longest pause before raising (default 60 s).
        api_url: Service API base URL for the pull fallback (``AGENTWATCH_API_URL``); the
            agent polls ``GET {api_url}/api/v1/agents/{instance_id}/control``.
        api_token: Bearer token for that API (``AGENTWATCH_API_TOKEN``).
        control_poll_interval_s: Mean seconds between polls, ±20% jitter (default 5).
        span_exporter: Replaces the OTLP exporter (tests pass an ``InMemorySpanExporter``).
        environ: Environment to read instead of ``os.environ``.

    Returns:
        The agent's handle.

    Raises:
        ValueError: An explicit argument is invalid (empty ``service_name``, an interval or
            port out of range, a malformed ``webhook_secret``, an unknown ``breaker_mode``).
    """
    if not service_name:
        raise ValueError("service_name must be a non-empty string")
    if heartbeat_interval_s is not None and not (
        math.isfinite(heartbeat_interval_s) and heartbeat_interval_s > 0
    ):
        raise ValueError(f"heartbeat_interval_s must be > 0, got {heartbeat_interval_s!r}")
    if control_port is not None and not 0 <= control_port <= 65535:
        raise ValueError(f"control_port must be in 0..65535, got {control_port!r}")
    for name, value in (
        ("breaker_pause_timeout_s", breaker_pause_timeout_s),
        ("control_poll_interval_s", control_poll_interval_s),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    mode = None
    if breaker_mode is not None:
        try:
            mode = BreakerMode(breaker_mode)
        except ValueError:
            raise ValueError(
                f"breaker_mode must be 'raise' or 'pause', got {breaker_mode!r}"
            ) from None
    env = os.environ if environ is None else environ
    settings = _merge(
        SdkSettings.from_env(env),
        endpoint=resolve_traces_endpoint(endpoint, env) if endpoint else None,
        heartbeat_interval_s=heartbeat_interval_s,
        webhook_secret=webhook_secret
        if webhook_secret is None or isinstance(webhook_secret, str)
        else ",".join(webhook_secret),
        control_host=control_host,
        control_port=control_port,
    )
    settings = dataclasses.replace(
        settings,
        control_url=control_url if control_url is not None else settings.control_url,
        breaker_mode=mode.value if mode is not None else settings.breaker_mode,
        breaker_pause_timeout_s=(
            breaker_pause_timeout_s
            if breaker_pause_timeout_s is not None
            else settings.breaker_pause_timeout_s
        ),
        api_url=api_url.rstrip("/") if api_url else settings.api_url,
        api_token=api_token if api_token is not None else settings.api_token,
        control_poll_interval_s=(
            control_poll_interval_s
            if control_poll_interval_s is not None
            else settings.control_poll_interval_s
        ),
    )
    verifier = _verifier(settings.webhook_secret, explicit=webhook_secret is not None)
    instance = (
        instance_id
        or settings.resource_attributes.get(semconv.SERVICE_INSTANCE_ID)
        or f"{service_name}-{uuid.uuid4().hex[:8]}"
    )
    resource = Resource.create(
        {
            **settings.resource_attributes,
            semconv.SERVICE_NAME: service_name,
            semconv.SERVICE_INSTANCE_ID: instance,
        }
    )
    exporter = GuardedSpanExporter(
        span_exporter
        if span_exporter is not None
        else OTLPSpanExporter(endpoint=settings.traces_endpoint)
    )
    # Not the global provider's atexit hook: Agent.shutdown() owns the order of shutdown.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processor = PrioritySpanProcessor(
        exporter,
        max_queue_size=settings.bsp_max_queue_size,
        schedule_delay_s=settings.bsp_schedule_delay_ms / 1000,
        max_export_batch_size=settings.bsp_max_export_batch_size,
    )
    provider.add_span_processor(processor)
    return Agent(
        service_name=service_name,
        instance_id=instance,
        provider=provider,
        exporter=exporter,
        processor=processor,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        verifier=verifier,
        control_host=settings.control_host,
        control_port=settings.control_port,
        control_server=control_server,
        control_url=settings.control_url,
        breaker_mode=BreakerMode(settings.breaker_mode),
        breaker_pause_timeout_s=settings.breaker_pause_timeout_s,
        api_url=settings.api_url,
        api_token=settings.api_token,
        control_poll_interval_s=settings.control_poll_interval_s,
    )


def _merge(
    settings: SdkSettings,
    *,
    endpoint: str | None,
    heartbeat_interval_s: float | None,
    webhook_secret: str | None,
    control_host: str | None,
    control_port: int | None,
) -> SdkSettings:
    """Override ``settings`` with the explicit (not None) arguments."""
    return dataclasses.replace(
        settings,
        traces_endpoint=settings.traces_endpoint if endpoint is None else endpoint,
        heartbeat_interval_s=(
            settings.heartbeat_interval_s if heartbeat_interval_s is None else heartbeat_interval_s
        ),
        webhook_secret=settings.webhook_secret if webhook_secret is None else webhook_secret,
        control_host=settings.control_host if control_host is None else control_host,
        control_port=settings.control_port if control_port is None else control_port,
    )


def _verifier(secret: str | None, *, explicit: bool) -> WebhookVerifier | None:
    # ``secret`` may list several comma-separated secrets (key rotation).
    if not secret:
        logger.warning(
            "no webhook secret (%s): control receiver disabled, breaker set only locally",
            semconv.WEBHOOK_SECRET_ENV,
        )
        return None
    try:
        return WebhookVerifier(secret)
    except ValueError as exc:
        if explicit:
            raise ValueError(f"webhook_secret: {exc}") from None
        logger.warning(
            "%s is invalid (%s): control receiver disabled", semconv.WEBHOOK_SECRET_ENV, exc
        )
        return None
