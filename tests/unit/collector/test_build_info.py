"""What build runs: ``agentwatch --version`` and the ``agentwatch_build_info`` metric."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from agentwatch.collector._metrics import ServiceMetrics
from agentwatch.detectors import compiled

BUILD = "compiled" if compiled() else "interpreted"


def test_version_names_the_release_and_how_the_detectors_run() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("agentwatch")), "--version"],  # the installed script
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == f"agentwatch {metadata.version('agentwatch')} (detectors {BUILD})\n"


def test_the_build_info_metric_says_the_same() -> None:
    registry = ServiceMetrics().registry
    labels = {"version": metadata.version("agentwatch"), "detectors": BUILD}
    assert registry.get_sample_value("agentwatch_build_info", labels) == 1.0
    other = {**labels, "detectors": "interpreted" if compiled() else "compiled"}
    assert registry.get_sample_value("agentwatch_build_info", other) is None
