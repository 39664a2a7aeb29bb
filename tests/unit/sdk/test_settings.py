from __future__ import annotations

import logging

import pytest

from agentwatch.sdk import SdkSettings, semconv
from agentwatch.sdk._settings import parse_resource_attributes, resolve_traces_endpoint

from .conftest import SECRET


@pytest.mark.parametrize(
    ("endpoint", "environ", "expected"),
    [
        (None, {}, "http://localhost:4318/v1/traces"),
        ("http://127.0.0.1:4318", {}, "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/", {}, "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/v1/traces", {}, "http://127.0.0.1:4318/v1/traces"),
        (
            "http://explicit:4318",
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9/custom"},
            "http://explicit:4318/v1/traces",
        ),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9/custom",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318",
            },
            "http://traces:9/custom",
        ),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318"}, "http://base:4318/v1/traces"),
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example/otlp/"},
            "https://gw.example/otlp/v1/traces",
        ),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, "http://localhost:4318/v1/traces"),
    ],
)
def test_traces_endpoint_resolution(
    endpoint: str | None, environ: dict[str, str], expected: str
) -> None:
    assert resolve_traces_endpoint(endpoint, environ) == expected


def test_defaults() -> None:
    settings = SdkSettings.from_env({})
    assert settings == SdkSettings()
    assert settings.webhook_secret is None
    assert settings.heartbeat_interval_s == 5.0
    assert (settings.control_host, settings.control_port) == ("127.0.0.1", 0)
    assert settings.bsp_schedule_delay_ms == 200
    assert settings.bsp_max_queue_size == 8192
    assert settings.bsp_max_export_batch_size == 512


def test_values_from_environment() -> None:
    settings = SdkSettings.from_env(
        {
            semconv.WEBHOOK_SECRET_ENV: SECRET,
            "AGENTWATCH_HEARTBEAT_INTERVAL_S": "0.5",
            "AGENTWATCH_CONTROL_HOST": "0.0.0.0",
            "AGENTWATCH_CONTROL_PORT": "9009",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod",
        }
    )
    assert settings.webhook_secret == SECRET
    assert settings.heartbeat_interval_s == 0.5
    assert (settings.control_host, settings.control_port) == ("0.0.0.0", 9009)
    assert settings.bsp_schedule_delay_ms == 50
    assert settings.bsp_max_queue_size == 100
    assert settings.bsp_max_export_batch_size == 100  # never above the queue size
    assert settings.resource_attributes == {semconv.DEPLOYMENT_ENVIRONMENT_NAME: "prod"}
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENTWATCH_HEARTBEAT_INTERVAL_S", "soon"),
        ("AGENTWATCH_HEARTBEAT_INTERVAL_S", "-1"),
        ("AGENTWATCH_HEARTBEAT_INTERVAL_S", "nan"),
        ("AGENTWATCH_CONTROL_PORT", "http"),
        ("AGENTWATCH_CONTROL_PORT", "65536"),
        ("OTEL_BSP_SCHEDULE_DELAY", "0"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
    ],
)
def test_bad_values_warn_and_use_defaults(
    name: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentwatch.sdk"):
        settings = SdkSettings.from_env({name: value})
    assert settings == SdkSettings()
    assert name in caplog.text


def test_resource_attribute_parsing() -> None:
    assert parse_resource_attributes("a=1, b = x%2Cy ,,c=") == {"a": "1", "b": "x,y", "c": ""}
    assert parse_resource_attributes("") == {}
    assert parse_resource_attributes("novalue") == {}


def test_explicit_arguments_beat_environment(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentwatch.sdk import init

    env = {"AGENTWATCH_HEARTBEAT_INTERVAL_S": "7", semconv.WEBHOOK_SECRET_ENV: "whsec_***"}
    with caplog.at_level(logging.WARNING, logger="agentwatch.sdk"):
        agent = init("svc", environ=env, span_exporter=InMemorySpanExporter())
    with agent:
        assert agent.control_url is None  # bad secret from the environment: warned, disabled
        assert semconv.WEBHOOK_SECRET_ENV in caplog.text
        assert "***" not in caplog.text
    with init(
        "svc", environ=env, webhook_secret=SECRET, span_exporter=InMemorySpanExporter()
    ) as agent:
        assert agent.control_url is not None


def test_control_plane_settings_from_environment(caplog: pytest.LogCaptureFixture) -> None:
    settings = SdkSettings.from_env(
        {
            "AGENTWATCH_API_URL": "http://api:8080/",
            "AGENTWATCH_API_TOKEN": "tok",
            "AGENTWATCH_CONTROL_POLL_INTERVAL_S": "2.5",
            "AGENTWATCH_BREAKER_MODE": "PAUSE",
            "AGENTWATCH_BREAKER_PAUSE_TIMEOUT_S": "30",
            "AGENTWATCH_CONTROL_URL": "https://runtime/agentwatch",
        }
    )
    assert settings.api_url == "http://api:8080"
    assert settings.api_token == "tok"
    assert "tok" not in repr(settings)
    assert settings.control_poll_interval_s == 2.5
    assert settings.breaker_mode == "pause"
    assert settings.breaker_pause_timeout_s == 30
    assert settings.control_url == "https://runtime/agentwatch"
    with caplog.at_level(logging.WARNING):
        bad = SdkSettings.from_env({"AGENTWATCH_BREAKER_MODE": "explode"})
    assert bad.breaker_mode == "raise"
    assert "AGENTWATCH_BREAKER_MODE" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"breaker_mode": "explode"},
        {"breaker_pause_timeout_s": 0},
        {"control_poll_interval_s": float("nan")},
    ],
)
def test_invalid_control_arguments_fail_fast(kwargs: dict[str, object]) -> None:
    from agentwatch.sdk import init

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        init("svc", environ={}, **kwargs)  # type: ignore[arg-type]
