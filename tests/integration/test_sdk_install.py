"""``pip install agentwatch[sdk]`` alone: a fresh virtual environment gets OpenTelemetry only."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_the_sdk_extra_installs_and_imports_alone(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("agentwatch-*.whl")
    env_dir = tmp_path / "agent-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"agentwatch[sdk] @ {wheel.as_uri()}"],
        check=True,
    )  # fmt: skip
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        check=True, capture_output=True, text=True,
    ).stdout.lower()  # fmt: skip
    for heavy in ("river", "clickhouse-connect", "chdb", "fastapi", "uvicorn", "scikit-learn"):
        assert f"\n{heavy}==" not in f"\n{installed}", f"{heavy} came with agentwatch[sdk]"
    assert "opentelemetry-sdk==" in installed
    probe = (
        "import sys; from agentwatch.sdk import init, CircuitOpenError; "
        "agent = init('probe', instance_id='p-1', endpoint='http://127.0.0.1:9', "
        "heartbeat_interval_s=3600); agent.shutdown(timeout_ms=100); "
        "print(sorted(m for m in ('river', 'clickhouse_connect', 'fastapi', 'chdb') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
