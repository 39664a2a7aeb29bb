from __future__ import annotations

import subprocess
import sys

import agentwatch.sdk


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": ""})


def test_semconv_does_not_import_opentelemetry() -> None:
    run(
        "import sys, agentwatch.sdk.semconv\n"
        "assert 'opentelemetry' not in sys.modules, 'semconv pulled in opentelemetry'"
    )


def test_package_import_is_lazy_and_brings_no_service_dependencies() -> None:
    run(
        "import sys, agentwatch.sdk as sdk\n"
        "assert 'opentelemetry' not in sys.modules\n"
        "sdk.init, sdk.Agent\n"
        "assert 'opentelemetry' in sys.modules\n"
        "for name in ('river', 'clickhouse_connect', 'fastapi', 'httpx', 'langchain_core'):\n"
        "    assert name not in sys.modules, name\n"
    )


def test_all_is_sorted_and_resolvable() -> None:
    assert agentwatch.sdk.__all__ == sorted(agentwatch.sdk.__all__)
    for name in agentwatch.sdk.__all__:
        assert getattr(agentwatch.sdk, name) is not None
    assert set(agentwatch.sdk.__all__) <= set(dir(agentwatch.sdk))


def test_langgraph_integration_does_not_import_langgraph() -> None:
    run(
        "import sys, agentwatch.sdk.langgraph\n"
        "assert 'langgraph' not in sys.modules, 'the integration pulled in langgraph'\n"
    )
