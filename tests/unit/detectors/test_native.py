"""The compiled detectors (setup.py, mypyc) against their sources, interpreted.

The same simulated fleet, faults included, goes through the pipeline as installed (compiled,
in this process) and as the .py files alone (a copy of them, in a subprocess): every anomaly
must be the same, to the last bit of its score, and a snapshot written by either restores in
the other and goes on to the same anomalies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import agentwatch.detectors
from agentwatch.detectors import Anomaly, DetectorPipeline, compiled
from agentwatch.detectors._scenarios import make_scenario

DETECTORS = Path(agentwatch.detectors.__file__).parent

pytestmark = pytest.mark.skipif(
    not compiled(), reason="the detectors are interpreted here (AGENTWATCH_PURE_PYTHON)"
)

# 60 agents for 18 minutes (faults start after 10): all ten families raise anomalies.
SCENARIO = {"seed": 1, "agents": 60, "hours": 0.3}
FAMILIES = {
    "action_drop",
    "action_rate",
    "action_stall",
    "cycle",
    "decision_drift",
    "decision_latency",
    "error_rate",
    "goal_stall",
    "loop",
    "message_volume",
}

_INTERPRETED = """
import json, sys
from pathlib import Path
from agentwatch.detectors import DetectorPipeline
from agentwatch.detectors import _pipeline
from agentwatch.detectors._scenarios import make_scenario

assert _pipeline.__file__.endswith(".py"), _pipeline.__file__
out = Path(sys.argv[1])
events = list(make_scenario(**json.loads(sys.argv[2])).events())
half = len(events) * 3 // 4

def run(pipeline, events):
    return [[a.detector, a.agent, a.severity.value, a.score.hex(), a.threshold.hex(), a.onset_ns,
             a.evidence["summary"]] for e in events for a in pipeline.process(e)]

def fresh():
    return DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)

first = fresh()
result = {"first": run(first, events[:half])}
(out / "interpreted.snapshot").write_bytes(first.snapshot())
adopted = fresh()
adopted.restore((out / "compiled.snapshot").read_bytes())
result["second_from_compiled"] = run(adopted, events[half:])
(out / "result.json").write_text(json.dumps(result))
"""


def _fresh() -> DetectorPipeline:
    return DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)


def _rows(anomalies: list[Anomaly]) -> list[list[Any]]:
    return [
        [
            a.detector,
            a.agent,
            a.severity.value,
            a.score.hex(),
            a.threshold.hex(),
            a.onset_ns,
            a.evidence["summary"],
        ]
        for a in anomalies
    ]


def _interpreted(tmp_path: Path) -> dict[str, list[list[Any]]]:
    """Runs the script above on a copy of the detectors' .py files (no compiled module)."""
    tree = tmp_path / "src"
    (tree / "agentwatch").mkdir(parents=True)
    (tree / "agentwatch" / "__init__.py").write_text("")
    shutil.copytree(DETECTORS, tree / "agentwatch" / "detectors", ignore=_not_source)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-c", _INTERPRETED, str(tmp_path), json.dumps(SCENARIO)],
        env=env,
        check=True,
        timeout=240,
    )
    result: dict[str, list[list[Any]]] = json.loads((tmp_path / "result.json").read_text())
    return result


def _not_source(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".py")]


def test_compiled_and_interpreted_detectors_raise_the_same_anomalies(tmp_path: Path) -> None:
    events = list(make_scenario(**SCENARIO).events())
    half = len(events) * 3 // 4
    native = _fresh()
    first = _rows([a for e in events[:half] for a in native.process(e)])
    (tmp_path / "compiled.snapshot").write_bytes(native.snapshot())
    second = _rows([a for e in events[half:] for a in native.process(e)])
    assert first and second  # the scenario's faults raise anomalies in both parts
    assert {row[0] for row in first + second} == FAMILIES

    interpreted = _interpreted(tmp_path)

    assert interpreted["first"] == first
    # A compiled pipeline's snapshot, restored by the interpreted detectors, goes on the same;
    assert interpreted["second_from_compiled"] == second
    # and an interpreted one's, restored here.
    adopted = _fresh()
    adopted.restore((tmp_path / "interpreted.snapshot").read_bytes())
    assert _rows([a for e in events[half:] for a in adopted.process(e)]) == second
