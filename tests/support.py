"""Helpers shared by tests: settings for a service on free loopback ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwatch.collector import ServiceSettings


def local_settings(data_dir: Path, **overrides: Any) -> ServiceSettings:
    """Settings for a service under ``data_dir`` on loopback, every port picked free.

    Traces decode in the service process (``decode_workers=0``) unless a test asks for the
    production default's decoder process: starting one costs each test a second.
    """
    defaults: dict[str, Any] = {
        "otlp_http_port": 0,
        "otlp_grpc_port": 0,
        "api_port": 0,
        "decode_workers": 0,
    }
    return ServiceSettings(data_dir=data_dir, **{**defaults, **overrides})
