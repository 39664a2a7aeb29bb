"""SDK configuration: explicit argument, then environment variable, then default."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TypeVar

from agentwatch.sdk import semconv

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_ENV = "AGENTWATCH_HEARTBEAT_INTERVAL_S"
CONTROL_HOST_ENV = "AGENTWATCH_CONTROL_HOST"
CONTROL_PORT_ENV = "AGENTWATCH_CONTROL_PORT"
CONTROL_URL_ENV = "AGENTWATCH_CONTROL_URL"
CONTROL_POLL_INTERVAL_ENV = "AGENTWATCH_CONTROL_POLL_INTERVAL_S"
BREAKER_MODE_ENV = "AGENTWATCH_BREAKER_MODE"
BREAKER_PAUSE_TIMEOUT_ENV = "AGENTWATCH_BREAKER_PAUSE_TIMEOUT_S"

OTLP_TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
BSP_SCHEDULE_DELAY_ENV = "OTEL_BSP_SCHEDULE_DELAY"
BSP_MAX_QUEUE_SIZE_ENV = "OTEL_BSP_MAX_QUEUE_SIZE"
BSP_MAX_EXPORT_BATCH_SIZE_ENV = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
RESOURCE_ATTRIBUTES_ENV = "OTEL_RESOURCE_ATTRIBUTES"

DEFAULT_TRACES_ENDPOINT = "http://localhost:4318/v1/traces"
TRACES_PATH = "/v1/traces"
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_CONTROL_HOST = "127.0.0.1"
DEFAULT_CONTROL_PORT = 0
# Agents must be seen within a second; OTel's 5 s default delay is too slow for detection.
DEFAULT_BSP_SCHEDULE_DELAY_MS = 200.0
DEFAULT_BSP_MAX_QUEUE_SIZE = 8192
DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE = 512
DEFAULT_CONTROL_POLL_INTERVAL_S = 5.0
DEFAULT_BREAKER_MODE = "raise"
BREAKER_MODES = ("raise", "pause")
DEFAULT_BREAKER_PAUSE_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class SdkSettings:
    """Settings of the SDK inside one agent process.

    Built by :meth:`from_env`; :func:`agentwatch.sdk.init` overrides fields with its explicit
    arguments. Immutable, so thread-safe.

    Attributes:
        webhook_secret: Shared Standard Webhooks secret (``AGENTWATCH_WEBHOOK_SECRET``); several
            comma-separated secrets are all accepted (key rotation); None disables the control
            receiver. Excluded from ``repr``.
        heartbeat_interval_s: Seconds between heartbeats (``AGENTWATCH_HEARTBEAT_INTERVAL_S``).
        control_host: Address the control receiver binds (``AGENTWATCH_CONTROL_HOST``).
        control_port: Its port, 0 for an ephemeral one (``AGENTWATCH_CONTROL_PORT``).
        traces_endpoint: Full OTLP/HTTP traces URL (see :func:`resolve_traces_endpoint`).
        bsp_schedule_delay_ms: Batch span processor delay (``OTEL_BSP_SCHEDULE_DELAY``).
        bsp_max_queue_size: Batch span processor queue (``OTEL_BSP_MAX_QUEUE_SIZE``).
        bsp_max_export_batch_size: Largest export batch (at most the queue size).
        resource_attributes: Parsed ``OTEL_RESOURCE_ATTRIBUTES``.
        control_url: The control URL to advertise instead of the receiver's own
            (``AGENTWATCH_CONTROL_URL``), e.g. where :meth:`Agent.asgi_app` is mounted.
        api_url: Base URL of the service API for the pull fallback (``AGENTWATCH_API_URL``);
            None disables polling.
        api_token: Bearer token for the API (``AGENTWATCH_API_TOKEN``). Excluded from ``repr``.
        control_poll_interval_s: Seconds between polls, jittered
            (``AGENTWATCH_CONTROL_POLL_INTERVAL_S``).
        breaker_mode: ``"raise"`` or ``"pause"`` (``AGENTWATCH_BREAKER_MODE``).
        breaker_pause_timeout_s: Longest pause in ``"pause"`` mode
            (``AGENTWATCH_BREAKER_PAUSE_TIMEOUT_S``).
    """

    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    control_host: str = DEFAULT_CONTROL_HOST
    control_port: int = DEFAULT_CONTROL_PORT
    traces_endpoint: str = DEFAULT_TRACES_ENDPOINT
    bsp_schedule_delay_ms: float = DEFAULT_BSP_SCHEDULE_DELAY_MS
    bsp_max_queue_size: int = DEFAULT_BSP_MAX_QUEUE_SIZE
    bsp_max_export_batch_size: int = DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE
    resource_attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    control_url: str | None = None
    api_url: str | None = None
    api_token: str | None = dataclasses.field(default=None, repr=False)
    control_poll_interval_s: float = DEFAULT_CONTROL_POLL_INTERVAL_S
    breaker_mode: str = DEFAULT_BREAKER_MODE
    breaker_pause_timeout_s: float = DEFAULT_BREAKER_PAUSE_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SdkSettings:
        """Read the settings from ``environ`` (default: ``os.environ``).

        Never raises: a bad value is logged as a warning naming the variable, and the default
        is used instead.
        """
        env = os.environ if environ is None else environ
        queue_size = _positive_int(env, BSP_MAX_QUEUE_SIZE_ENV, DEFAULT_BSP_MAX_QUEUE_SIZE)
        return cls(
            webhook_secret=env.get(semconv.WEBHOOK_SECRET_ENV) or None,
            heartbeat_interval_s=_positive_float(
                env, HEARTBEAT_INTERVAL_ENV, DEFAULT_HEARTBEAT_INTERVAL_S
            ),
            control_host=env.get(CONTROL_HOST_ENV, "").strip() or DEFAULT_CONTROL_HOST,
            control_port=_port(env, CONTROL_PORT_ENV, DEFAULT_CONTROL_PORT),
            traces_endpoint=resolve_traces_endpoint(None, env),
            bsp_schedule_delay_ms=_positive_float(
                env, BSP_SCHEDULE_DELAY_ENV, DEFAULT_BSP_SCHEDULE_DELAY_MS
            ),
            bsp_max_queue_size=queue_size,
            bsp_max_export_batch_size=min(
                _positive_int(
                    env, BSP_MAX_EXPORT_BATCH_SIZE_ENV, DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE
                ),
                queue_size,
            ),
            resource_attributes=parse_resource_attributes(env.get(RESOURCE_ATTRIBUTES_ENV, "")),
            control_url=env.get(CONTROL_URL_ENV, "").strip() or None,
            api_url=env.get(semconv.API_URL_ENV, "").strip().rstrip("/") or None,
            api_token=env.get(semconv.API_TOKEN_ENV, "").strip() or None,
            control_poll_interval_s=_positive_float(
                env, CONTROL_POLL_INTERVAL_ENV, DEFAULT_CONTROL_POLL_INTERVAL_S
            ),
            breaker_mode=_choice(env, BREAKER_MODE_ENV, BREAKER_MODES, DEFAULT_BREAKER_MODE),
            breaker_pause_timeout_s=_positive_float(
                env, BREAKER_PAUSE_TIMEOUT_ENV, DEFAULT_BREAKER_PAUSE_TIMEOUT_S
            ),
        )


def resolve_traces_endpoint(endpoint: str | None, environ: Mapping[str, str]) -> str:
    """Return the full OTLP/HTTP traces URL.

    Precedence: ``endpoint`` (a base URL such as ``http://127.0.0.1:4318``; ``/v1/traces`` is
    appended unless already there), then ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (a full URL,
    used as is), then ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL), then
    ``http://localhost:4318/v1/traces``.
    """
    if endpoint and endpoint.strip():
        return _append_traces_path(endpoint.strip())
    traces_endpoint = environ.get(OTLP_TRACES_ENDPOINT_ENV, "").strip()
    if traces_endpoint:
        return traces_endpoint
    base = environ.get(OTLP_ENDPOINT_ENV, "").strip()
    if base:
        return _append_traces_path(base)
    return DEFAULT_TRACES_ENDPOINT


def parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse ``OTEL_RESOURCE_ATTRIBUTES`` (``key=value`` pairs, comma-separated, %-encoded)."""
    attributes: dict[str, str] = {}
    for pair in raw.split(","):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            if pair.strip():
                logger.warning("ignoring malformed %s entry %r", RESOURCE_ATTRIBUTES_ENV, pair)
            continue
        attributes[urllib.parse.unquote(key)] = urllib.parse.unquote(value.strip())
    return attributes


def _append_traces_path(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


N = TypeVar("N", int, float)


def _number(
    env: Mapping[str, str],
    name: str,
    default: N,
    convert: Callable[[str], N],
    valid: Callable[[N], bool],
    expected: str,
) -> N:
    """``env[name]`` converted and checked; a bad value is logged (never raised) and replaced
    by ``default``, as the SDK must never break the agent over its configuration."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):
        logger.warning("%s must be %s, got %r; using %s", name, expected, raw, default)
        return default
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, lambda v: math.isfinite(v) and v > 0, "a number > 0")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, lambda v: v >= 1, "an integer >= 1")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, lambda v: 0 <= v <= 65535, "a port in 0..65535")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        logger.warning("%s must be one of %s, got %r; using %s", name, choices, raw, default)
        return default
    return raw.lower()
