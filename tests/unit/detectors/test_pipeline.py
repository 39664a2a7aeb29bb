from __future__ import annotations

import dataclasses
import itertools
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.detectors import (
    ActionRateDetector,
    AgentEvent,
    Anomaly,
    CycleDetector,
    DetectorPipeline,
    EventKind,
    LoopDetector,
)
from tests.unit.detectors.streams import T0_S, action, poisson_times, spike_times


def _comparable(anomalies: list[Anomaly]) -> list[Anomaly]:
    return [dataclasses.replace(a, id="", detected_ns=0) for a in anomalies]


def test_keys_by_agent() -> None:
    pipeline = DetectorPipeline(clock=lambda: 0)
    a = [(t, "a") for t in poisson_times(0, rate_per_s=3, start_s=T0_S, duration_s=90)]
    a += [(t, "a") for t in spike_times(T0_S + 60.2, n=30, duration_s=0.5)]
    b = [(t, "b") for t in poisson_times(1, rate_per_s=3, start_s=T0_S, duration_s=90)]
    found = []
    for t, agent in sorted(a + b):
        found += pipeline.process(action(t, agent=agent))
    assert {x.agent for x in found} == {"a"}
    assert {x.detector for x in found} == {"action_rate"}
    assert sorted(pipeline.agents()) == ["a", "b"]
    assert len(pipeline) == 2


def test_loops_are_per_agent() -> None:
    pipeline = DetectorPipeline()
    found = []
    for i in range(4):  # interleaved: each agent repeats "x" twice, no loop yet
        found += pipeline.process(action(float(i), agent="a" if i % 2 else "b", fingerprint="x"))
    assert found == []
    found += pipeline.process(action(5.0, agent="a", fingerprint="x"))
    assert [(x.agent, x.score) for x in found] == [("a", 3.0)]


def test_kinds_no_family_reads_are_ignored() -> None:
    pipeline = DetectorPipeline()
    read = {
        EventKind.ACTION,
        EventKind.HEARTBEAT,
        EventKind.DECISION,
        EventKind.GOAL,
        EventKind.MESSAGE,
        EventKind.SESSION,
    }
    for kind in EventKind:
        if kind in read:
            continue
        for i in range(50):
            event = dataclasses.replace(action(T0_S + i / 100, fingerprint="x"), kind=kind)
            assert pipeline.process(event) == []
    assert len(pipeline) == 0
    assert pipeline.agents() == []


def test_fingerprinted_non_actions_make_no_loop() -> None:
    pipeline = DetectorPipeline()
    for kind in (EventKind.HEARTBEAT, EventKind.DECISION, EventKind.GOAL):
        for i in range(10):
            event = dataclasses.replace(action(T0_S + i / 100, fingerprint="x"), kind=kind)
            assert pipeline.process(event) == []
    assert pipeline.agents() == ["a1"]  # the families that read these kinds track the agent


def test_ids_and_clock_are_injected() -> None:
    ids = (f"{n:032x}" for n in itertools.count())
    ticks = itertools.count(1_000)
    pipeline = DetectorPipeline(clock=lambda: next(ticks), id_factory=lambda: next(ids))
    found = [a for i in range(6) for a in pipeline.process(action(float(i), fingerprint="x"))]
    assert [(a.id, a.detected_ns) for a in found] == [("0" * 32, 1_000), (f"{1:032x}", 1_001)]


def test_default_ids_are_32_hex_chars() -> None:
    pipeline = DetectorPipeline()
    found = [a for i in range(3) for a in pipeline.process(action(float(i), fingerprint="x"))]
    [anomaly] = found
    assert len(anomaly.id) == 32
    int(anomaly.id, 16)


def test_pickle_round_trip_continues_identically_and_drops_injected_callables() -> None:
    pipeline = DetectorPipeline(clock=lambda: 7, id_factory=lambda: "f" * 32)
    normal = poisson_times(0, rate_per_s=3, start_s=T0_S, duration_s=120)
    spike = spike_times(T0_S + 60.2, n=30, duration_s=0.5)
    times = sorted(normal + spike)
    head = [t for t in times if t < T0_S + 60.3]
    tail = [t for t in times if t >= T0_S + 60.3]
    for i, t in enumerate(head):
        pipeline.process(action(t, agent=f"agent-{i % 2}", fingerprint=str(i % 3 == 0)))
    restored = pickle.loads(pickle.dumps(pipeline))
    assert restored.agents() == pipeline.agents()
    assert restored.id_factory is not pipeline.id_factory
    outputs = []
    for candidate in (pipeline, restored):
        found = []
        for i, t in enumerate(tail):
            e = action(t, agent=f"agent-{i % 2}", fingerprint=str(i % 3 == 0))
            found += candidate.process(e)
        outputs.append(_comparable(found))
    assert outputs[0] == outputs[1]
    assert outputs[0]  # the rest of the spike was still detected after the restore


def test_forget() -> None:
    pipeline = DetectorPipeline()
    pipeline.process(action(1.0))
    assert pipeline.forget("a1")
    assert not pipeline.forget("a1")
    assert len(pipeline) == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rate_warning_z": 0.0}, "rate_warning_z"),
        ({"rate_critical_z": 4.0}, "rate_critical_z"),
        ({"loop_min_repeats": 1}, "min_repeats"),
        ({"rate_window_s": -1.0}, "window_s"),
        ({"rate_warmup_windows": 0}, "warmup_windows"),
    ],
)
def test_arguments_are_validated_at_construction(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        DetectorPipeline(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=0.9), st.sampled_from(["", "a", "b", "c", "d" * 80])
        ),
        min_size=1,
        max_size=400,  # the pace settles after 200 gaps
    )
)
def test_the_inlined_hot_path_learns_as_the_detectors_do(steps: list[tuple[float, str]]) -> None:
    # process() inlines the loop, cycle and open-window rate and pace steps; the detectors' own
    # observe is the reference.
    pipeline = DetectorPipeline(rate_warmup_windows=2)
    loop, cycle = LoopDetector(), CycleDetector()
    rate = ActionRateDetector(warmup_windows=2, report_z=pipeline.rate_warning_z)
    t = T0_S
    for gap, fingerprint in steps:
        t += gap
        ts_ns = round(t * 1e9)
        pipeline.process(action(t, agent="a1", fingerprint=fingerprint))
        state = pipeline._agents["a1"]
        if fingerprint:
            loop.observe(fingerprint)
            cycle.observe(fingerprint, ts_ns)
        rate.observe(ts_ns / 1_000_000_000)
        assert state.loop.run_length == loop.run_length
        for probe in ("a", "b", "c", "d" * 80):
            x = {"fingerprint": probe}
            assert state.cycle.score_one(x) == cycle.score_one(x)
        assert state.cycle._onset == cycle._onset
        assert (state.rate.window, state.rate.mean, state.rate.std) == (
            rate.window,
            rate.mean,
            rate.std,
        )
        assert state.rate.count_one({"t": t + 0.01}) == rate.count_one({"t": t + 0.01})
        # The pace, inlined with the rate: every learned number (its gap quantile, mean gap,
        # CUSUM, tier counts and shares) as its own step_to leaves it.
        assert state.rate.pace.__getstate__() == rate.pace.__getstate__()


@pytest.mark.parametrize("seed", range(3))
def test_the_inlined_pace_learns_as_its_own_step_on_long_streams(seed: int) -> None:
    # Long enough for the pace to settle, warm up and score (its tiers' ratios set, its
    # CUSUM rising in floods and falling after), which short generated examples never reach;
    # idle heartbeats pause both.
    rng = random.Random(seed)
    pipeline = DetectorPipeline()
    rate = ActionRateDetector(report_z=pipeline.rate_warning_z)
    t = T0_S
    for k in range(3_000):
        flood = 1_200 <= k % 1_500 < 1_260
        t += rng.expovariate(12.0) if flood else max(rng.expovariate(2.0), rng.uniform(0.1, 0.4))
        if k % 700 == 699:  # idle for a while
            t += 30.0
            idle = AgentEvent("a1", "researcher", EventKind.HEARTBEAT, round(t * 1e9), key="idle")
            pipeline.process(idle)
            rate.pause()
        pipeline.process(action(t))
        rate.observe(round(t * 1e9) / 1_000_000_000)
        assert pipeline._agents["a1"].rate.pace.__getstate__() == rate.pace.__getstate__()
    assert rate.pace.warm and rate.pace._l0 > 0.0  # the scoring path was compared too


def test_events_and_anomalies_stay_frozen_and_pickle() -> None:
    # Compiled (setup.py), a frozen dataclass cannot be unpickled field by field: they pickle
    # through their constructor, and stay frozen.
    import dataclasses
    import pickle

    from agentwatch.detectors import Anomaly, Severity

    event = AgentEvent("a1", "c", EventKind.ACTION, 7, key="search", error=True, value=2.5)
    anomaly = Anomaly(
        "0" * 32, "a1", "c", "loop", 3.0, 3.0, Severity.WARNING, 1, 2, {"summary": "s"}, "t"
    )
    for value in (event, anomaly):
        assert pickle.loads(pickle.dumps(value)) == value
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.agent = "a2"  # type: ignore[misc]
    assert dataclasses.replace(event, key="read").key == "read"
