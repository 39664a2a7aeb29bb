"""The distribution's layout: every subpackage in the wheel, its detectors compiled (or, with no
compiler, not), extras minimal, imports one way."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("alerts", "collector", "dashboards", "detectors", "sdk")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        cwd=out,
    )  # fmt: skip
    (path,) = out.glob("agentwatch-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def test_every_subpackage_is_in_the_wheel_with_its_marker(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in SUBPACKAGES:
        assert f"agentwatch/{package}/__init__.py" in names, f"{package} missing from the wheel"
        assert f"agentwatch/{package}/py.typed" in names, f"{package} has no py.typed"
    # Each folder's modules land under its import name, and nothing lands beside agentwatch/.
    for folder in SUBPACKAGES:
        for source in (ROOT / folder).glob("*.py"):
            assert f"agentwatch/{folder}/{source.name}" in names
    top_level = {n.split("/", 1)[0] for n in names if not n.startswith("agentwatch-")}
    assert top_level == {"agentwatch"}
    assert "agentwatch/__init__.py" not in names  # a namespace: there is no top-level folder


def test_the_wheel_holds_the_compiled_detectors_beside_their_sources(
    wheel: zipfile.ZipFile,
) -> None:
    names = set(wheel.namelist())
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for module in ("_pipeline", "_rate", "_pace", "_native__mypyc"):
        assert f"agentwatch/detectors/{module}{suffix}" in names
    assert not any(n.endswith(suffix) for n in names if not n.startswith("agentwatch/detectors/"))


def test_without_a_compiler_the_build_warns_and_builds_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "CC": "false"}  # a "compiler" that always fails
    env.pop("AGENTWATCH_PURE_PYTHON", None)
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "temp")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # the install goes on, interpreted
    assert "could not be compiled" in done.stderr and "Install a C compiler" in done.stderr
    assert not list((tmp_path / "lib").rglob("*.so"))  # no partial build: it would not load


def test_sdk_extra_pulls_only_opentelemetry_and_base_needs_nothing(
    wheel: zipfile.ZipFile,
) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    requires = metadata.get_all("Requires-Dist") or []
    assert [r for r in requires if "extra ==" not in r] == []
    sdk = [r for r in requires if r.replace(" ", "").endswith('extra=="sdk"')]
    assert sdk, "the sdk extra is declared"
    assert all(r.startswith("opentelemetry-") for r in sdk), sdk
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    assert "agentwatch = agentwatch.collector._cli:main" in wheel.read(entry_points).decode()


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return {name.split(".", 1)[0] for name in result.stdout.split()}


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import agentwatch.sdk; agentwatch.sdk.init", {"river", "clickhouse_connect", "fastapi",
                                                        "chdb", "sklearn", "httpx", "uvicorn"}),
        ("import agentwatch.sdk.semconv", {"opentelemetry", "river", "clickhouse_connect"}),
        ("import agentwatch.sdk.webhooks", {"opentelemetry", "river", "clickhouse_connect"}),
        ("import agentwatch.detectors", {"clickhouse_connect", "fastapi", "httpx",
                                         "opentelemetry", "chdb"}),
        ("import agentwatch.alerts", {"river", "clickhouse_connect", "fastapi", "opentelemetry",
                                      "sklearn"}),
    ],
)  # fmt: skip
def test_imports_run_one_way(statement: str, forbidden: set[str]) -> None:
    assert _loaded_after(statement) & forbidden == set()
