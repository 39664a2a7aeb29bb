"""Detector benchmarks: per-agent memory and throughput. Prints ``BENCH <name>: <figure>`` lines.

Run: ``.venv/bin/python -m pytest tests/bench/test_bench_detectors.py -s -q -p no:cacheprovider``.
Figures go to the README, never into asserts (STYLE.md, Tests).
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np

from agentwatch.detectors import (
    AgentEvent,
    DetectorPipeline,
    EventKind,
    SeriesDetector,
    TransitionModel,
    compiled,
)
from agentwatch.detectors._sessions import synthetic_sessions

# Whether the detectors run compiled (setup.py) or interpreted (AGENTWATCH_PURE_PYTHON=1).
_BUILD = "compiled" if compiled() else "interpreted"
N_AGENTS = 10_000
T0_NS = 1_700_000_000 * 1_000_000_000


def _events(n_events: int, seed: int = 0) -> list[AgentEvent]:
    """Interleaved actions of ``N_AGENTS`` agents, ~3 per agent-second, a few tools each."""
    rng = np.random.default_rng(seed)
    agents = rng.integers(0, N_AGENTS, size=n_events)
    tools = rng.integers(0, 5, size=n_events)
    step_ns = round(1e9 / (3 * N_AGENTS))
    names = [f"agent-{a:05d}" for a in range(N_AGENTS)]
    fingerprints = [f"{k:064x}" for k in range(5)]
    return [
        AgentEvent(
            names[a],
            "researcher",
            EventKind.ACTION,
            T0_NS + i * step_ns,
            key=f"tool-{k}",
            fingerprint=fingerprints[k],
        )
        for i, (a, k) in enumerate(zip(agents.tolist(), tools.tolist(), strict=True))
    ]


def test_bench_pipeline_memory_per_agent() -> None:
    events = _events(30 * N_AGENTS, seed=1)  # ~30 actions each: every detector allocated, warm
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    pipeline = DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)
    for event in events:
        pipeline.process(event)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(
        f"\nBENCH pipeline_bytes_per_agent: {grown / len(pipeline):.0f} (tracemalloc, 10000 agents)"
    )


def test_bench_pipeline_throughput() -> None:
    """Three passes, each on a fresh pipeline: the median and the range (this VM's speed varies
    by a third from one minute to the next)."""
    events = _events(400_000)
    rates = []
    for _ in range(3):
        pipeline = DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)
        for event in events[:100_000]:  # allocate every agent first
            pipeline.process(event)
        start = time.perf_counter()
        for event in events[100_000:]:
            pipeline.process(event)
        rates.append(300_000 / (time.perf_counter() - start))
    rates.sort()
    print(
        f"\nBENCH pipeline_events_per_s: {rates[1]:,.0f} (median of 3; {rates[0]:,.0f}-"
        f"{rates[2]:,.0f}; 10000 agents, one core, {_BUILD})"
    )


def test_bench_series_detector() -> None:
    rng = np.random.default_rng(2)
    values = (50 + 5 * rng.standard_normal(100_000)).tolist()
    detector = SeriesDetector()
    start = time.perf_counter()
    for v in values:
        x = {"value": v}
        detector.score_one(x)
        detector.learn_one(x)
    elapsed = time.perf_counter() - start
    print(f"\nBENCH series_values_per_s: {len(values) / elapsed:,.0f}")


def test_bench_transition_model() -> None:
    data = synthetic_sessions(3, n_train=2000, n_test=5000)
    model = TransitionModel()
    for keys in data.train:
        model.learn_one({"keys": keys})
    start = time.perf_counter()
    for keys in data.test:
        model.score_one({"keys": keys})
    elapsed = time.perf_counter() - start
    print(f"\nBENCH transition_sessions_per_s: {len(data.test) / elapsed:,.0f}")


def test_bench_pipeline_on_a_simulated_fleet() -> None:
    """Every event kind the families read (actions, decisions, goals, heartbeats, messages),
    as a simulated 200-agent fleet sends them, faults included."""
    from agentwatch.detectors._scenarios import make_scenario

    events = list(make_scenario(0, agents=200, hours=0.25).events())
    pipeline = DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)
    start = time.perf_counter()
    for event in events:
        pipeline.process(event)
    elapsed = time.perf_counter() - start
    print(
        f"\nBENCH pipeline_fleet_events_per_s: {len(events) / elapsed:,.0f} "
        f"({len(events):,} events of 200 simulated agents, all kinds, one core, {_BUILD})"
    )
