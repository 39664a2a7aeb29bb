"""``init()``: build one agent's tracer provider, exporter, heartbeat and control receiver."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import uuid
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from agentwatch.sdk import semconv
from agentwatch.sdk._agent import Agent
from agentwatch.sdk._exporter import GuardedSpanExporter
from agentwatch.sdk._settings import SdkSettings, resolve_traces_endpoint
from agentwatch.sdk._webhooks import WebhookVerifier

logger = logging.getLogger(__name__)


def init(
    service_name: str,
    instance_id: str | None = None,
    endpoint: str | None = None,
    *,
    heartbeat_interval_s: float | None = None,
    webhook_secret: str | None = None,
    control_host: str | None = None,
    control_port: int | None = None,
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
        webhook_secret: Standard Webhooks secret (``whsec_...``); without one (here or in
            ``AGENTWATCH_WEBHOOK_SECRET``) no control receiver runs.
        control_host: Address of the control receiver (default ``127.0.0.1``).
        control_port: Its port (default 0: an ephemeral port).
        span_exporter: Replaces the OTLP exporter (tests pass an ``InMemorySpanExporter``).
        environ: Environment to read instead of ``os.environ``.

    Returns:
        The agent's handle.

    Raises:
        ValueError: An explicit argument is invalid (empty ``service_name``, an interval or
            port out of range, a malformed ``webhook_secret``).
    """
    if not service_name:
        raise ValueError("service_name must be a non-empty string")
    if heartbeat_interval_s is not None and not (
        math.isfinite(heartbeat_interval_s) and heartbeat_interval_s > 0
    ):
        raise ValueError(f"heartbeat_interval_s must be > 0, got {heartbeat_interval_s!r}")
    if control_port is not None and not 0 <= control_port <= 65535:
        raise ValueError(f"control_port must be in 0..65535, got {control_port!r}")
    env = os.environ if environ is None else environ
    settings = _merge(
        SdkSettings.from_env(env),
        endpoint=resolve_traces_endpoint(endpoint, env) if endpoint else None,
        heartbeat_interval_s=heartbeat_interval_s,
        webhook_secret=webhook_secret,
        control_host=control_host,
        control_port=control_port,
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
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=settings.bsp_max_queue_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
            max_export_batch_size=settings.bsp_max_export_batch_size,
        )
    )
    return Agent(
        service_name=service_name,
        instance_id=instance,
        provider=provider,
        exporter=exporter,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        verifier=verifier,
        control_host=settings.control_host,
        control_port=settings.control_port,
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
