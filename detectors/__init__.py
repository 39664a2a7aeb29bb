"""Per-agent streaming anomaly detectors and the pipeline that runs them.

A detector has river's verbs: ``learn_one(x) -> None`` updates it with one observation and
``score_one(x) -> float`` scores one observation without changing anything. Scores are finite,
higher means more anomalous, and a detector still warming up scores 0.0. The caller scores, then
learns. Detectors do no I/O, never block, and keep per-agent state small (a few counters and
running statistics, well under a few KiB pickled) since a fleet has thousands of agents; they
pickle, so baselines survive a restart.

:class:`SeriesDetector` scores a value stream (per-window action counts, any metric) and
:class:`TransitionModel` scores sessions of action keys against a cohort's normal sessions; both
also run offline (``agentwatch backtest``), with NAB's scoring in ``_nab``.

:class:`DetectorPipeline` keys :class:`AgentEvent` s by agent, runs one detector of each family
per agent (loops and short cycles, action rate up and down, decision drift, error bursts, decision
latency, goal stalls, message volume), thresholds the scores with hysteresis and returns
:class:`Anomaly` s with evidence. Liveness (missed heartbeats) is a timer, judged outside the
pipeline. A seeded fleet simulator with labelled faults (``_scenarios``) and its scoring
(``_evaluate``) measure them all. Nothing here is thread-safe: serialize calls per pipeline.

The pipeline and the per-agent detectors are usually compiled (mypyc, at install: setup.py);
:func:`compiled` says whether they are here. Either way they behave the same.
"""

from agentwatch.detectors import _pipeline as _pipeline_module
from agentwatch.detectors._census import AgentCountDetector
from agentwatch.detectors._drift import KeyDriftDetector
from agentwatch.detectors._drop import ActivityDropDetector
from agentwatch.detectors._health import ErrorBurstDetector, GoalStallDetector, LatencyDetector
from agentwatch.detectors._loop import CycleDetector, LoopDetector
from agentwatch.detectors._messages import MessageVolumeDetector
from agentwatch.detectors._pace import PaceDetector
from agentwatch.detectors._pipeline import DetectorPipeline
from agentwatch.detectors._rate import ActionRateDetector
from agentwatch.detectors._sequence import TransitionModel
from agentwatch.detectors._series import SeriesDetector
from agentwatch.detectors._types import AgentEvent, Anomaly, Detector, EventKind, Severity


def compiled() -> bool:
    """True when the per-event modules run compiled, False when interpreted
    (``AGENTWATCH_PURE_PYTHON=1`` at install, or no C compiler then)."""
    return not (_pipeline_module.__file__ or "").endswith(".py")


__all__ = [
    "ActionRateDetector",
    "ActivityDropDetector",
    "AgentCountDetector",
    "AgentEvent",
    "Anomaly",
    "CycleDetector",
    "Detector",
    "DetectorPipeline",
    "ErrorBurstDetector",
    "EventKind",
    "GoalStallDetector",
    "KeyDriftDetector",
    "LatencyDetector",
    "LoopDetector",
    "MessageVolumeDetector",
    "PaceDetector",
    "SeriesDetector",
    "Severity",
    "TransitionModel",
    "compiled",
]
