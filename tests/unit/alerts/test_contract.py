"""The alerts package's boundaries: what it imports and what it accepts."""

from __future__ import annotations

import subprocess
import sys

import agentwatch.alerts
from agentwatch.alerts import AnomalyLike
from agentwatch.detectors._types import Anomaly, Severity


def test_alerts_imports_neither_detectors_nor_river() -> None:
    code = (
        "import sys, agentwatch.alerts; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('river', 'numpy', 'sklearn') "
        "or m.startswith(('agentwatch.detectors', 'agentwatch.collector'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_complete() -> None:
    # Its order is ruff's (RUF022, isort-style); here: every name exists, none twice.
    names = agentwatch.alerts.__all__
    assert len(set(names)) == len(names)
    assert all(hasattr(agentwatch.alerts, n) for n in names)


def test_detector_anomaly_satisfies_anomaly_like() -> None:
    # Checked statically by mypy (an assignment to the Protocol type) and exercised at runtime.
    anomaly: AnomalyLike = Anomaly(
        id="d" * 32,
        agent="a",
        service="s",
        detector="loop",
        score=1.0,
        threshold=0.5,
        severity=Severity.INFO,
        onset_ns=0,
        detected_ns=0,
    )
    assert anomaly.severity == "info"
