"""Message volume: a flood of messages to peers, against the agent's own usual volume."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind, MessageVolumeDetector
from agentwatch.detectors._snapshots import _SNAPSHOT_VERSION
from tests.unit.detectors.streams import T0_S, action, poisson_times

NS = 1_000_000_000


def message(
    t_s: float, *, peer: str = "planner", size: float = 2000.0, agent: str = "a1"
) -> AgentEvent:
    return AgentEvent(agent, "researcher", EventKind.MESSAGE, round(t_s * NS), key=peer, value=size)


def chatter(seed: int, start_s: float, duration_s: float, rate_per_s: float = 0.3) -> list[float]:
    return poisson_times(seed, rate_per_s=rate_per_s, start_s=start_s, duration_s=duration_s)


def flood(start_s: float, duration_s: float, rate_per_s: float) -> list[float]:
    n = round(duration_s * rate_per_s)
    return [start_s + k / rate_per_s for k in range(n)]


def _observe_all(detector: MessageVolumeDetector, times: list[float], peer: str) -> list[float]:
    rng = random.Random(len(times))
    return [detector.observe(t, rng.uniform(200, 4000), peer)[1] for t in times]


def test_a_flood_to_one_peer_scores_high_within_seconds() -> None:
    detector = MessageVolumeDetector()
    assert max(_observe_all(detector, chatter(1, T0_S, 600), "planner")) < 6
    start = T0_S + 600
    scores = _observe_all(detector, flood(start, 30, rate_per_s=3.0), "critic")  # 10x
    first = next(i for i, z in enumerate(scores) if z >= 8)
    assert first / 3.0 < 15  # seconds into the flood
    assert detector.top_peer == "critic"
    assert detector.top_peer_messages >= detector.count // 2


def test_a_flood_too_slow_for_one_window_adds_up_over_three() -> None:
    detector = MessageVolumeDetector()
    _observe_all(detector, chatter(12, T0_S, 600, rate_per_s=0.15), "planner")
    start = math.ceil((T0_S + 600) / 10) * 10  # a window's start
    scores = _observe_all(detector, flood(start, 30, rate_per_s=1.4), "critic")
    # 14 messages a window against a usual 1.5: about 6 in one window, over 8 in three.
    assert (14 - detector.mean) / max(detector.std, 2.0) < 8 <= max(scores)


def test_normal_chatter_stays_quiet_steady_or_in_sessions() -> None:
    steady = MessageVolumeDetector()
    assert max(_observe_all(steady, chatter(2, T0_S, 3600, rate_per_s=0.6), "p")) < 6
    # Sessions: a few seconds of work with a message or two, then idle 10-90 s.
    rng = random.Random(3)
    times, t = [], T0_S
    for _ in range(80):
        times += sorted(t + rng.uniform(0, 4) for _ in range(rng.randint(0, 3)))
        t += 4 + rng.uniform(10, 90)
    assert max(_observe_all(MessageVolumeDetector(), times, "p")) < 6


def test_one_large_message_is_not_a_flood() -> None:
    detector = MessageVolumeDetector()
    _observe_all(detector, chatter(4, T0_S, 600), "planner")
    assert detector.score_one({"t": T0_S + 601, "bytes": 50_000_000, "peer": "x"}) < 1.0


def test_bytes_add_to_a_flood_of_larger_messages() -> None:
    detector = MessageVolumeDetector()
    _observe_all(detector, chatter(5, T0_S, 600), "planner")
    for k in range(12):  # a dozen messages of 40 KB, about 20 times the usual size
        z = detector.observe(T0_S + 600 + k / 2, 40_000, "critic")[1]
    by_count = (12 - detector.mean) / max(detector.std, 2.0)
    assert z > by_count + 1


def test_warm_up_and_non_finite_times() -> None:
    detector = MessageVolumeDetector(warmup_windows=3)
    assert detector.observe(T0_S, 100.0, "p") == (math.floor(T0_S / 10), 0.0)
    assert detector.score_one({"t": T0_S + 1}) == 0.0
    with pytest.raises(ValueError, match="finite"):
        detector.learn_one({"t": math.nan})


def test_a_flood_is_held_out_of_the_baseline() -> None:
    detector = MessageVolumeDetector()
    _observe_all(detector, chatter(6, T0_S, 600), "planner")
    before = detector.mean
    _observe_all(detector, flood(T0_S + 600, 90, rate_per_s=4.0), "critic")
    detector.observe(T0_S + 700, 1000, "planner")  # closes the flood's last window
    assert detector.mean < 1.5 * before + 0.5
    assert detector.onset_window == math.floor((T0_S + 700) / 10)  # an empty window ended it


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=600), st.sampled_from([0.0, 300.0, 9e4])),
        min_size=1,
        max_size=200,
    )
)
def test_observe_equals_score_then_learn(messages: list[tuple[float, float]]) -> None:
    fused = MessageVolumeDetector(window_s=5.0, warmup_windows=3)
    verbs = MessageVolumeDetector(window_s=5.0, warmup_windows=3)
    for t, size in sorted(messages) + messages[:20]:  # ordered, then some late ones
        x = {"t": t, "bytes": size, "peer": "p"}
        expected = verbs.score_one(x)
        verbs.learn_one(x)
        assert math.isclose(fused.observe(t, size, "p")[1], expected, abs_tol=1e-9)
    assert pickle.dumps(fused) == pickle.dumps(verbs)


# --- in the pipeline --------------------------------------------------------------------------


def _warm(pipeline: DetectorPipeline, agent: str = "a1", seconds: float = 600) -> None:
    for t in chatter(7, T0_S, seconds):
        assert pipeline.process(message(t, agent=agent)) == []


def _flood(pipeline: DetectorPipeline, start_s: float, agent: str = "a1") -> list[str]:
    found = []
    for t in flood(start_s, 40, rate_per_s=4.0):
        found += [
            f"{a.detector}:{a.severity}"
            for a in pipeline.process(message(t, peer="critic", agent=agent))
        ]
    return found


def test_the_pipeline_raises_one_warning_per_flood_with_evidence() -> None:
    pipeline = DetectorPipeline()
    _warm(pipeline)
    start = T0_S + 605
    anomalies = []
    for t in flood(start, 40, rate_per_s=4.0):
        anomalies += pipeline.process(message(t, peer="critic"))
    [anomaly] = anomalies
    assert (anomaly.detector, anomaly.severity.value) == ("message_volume", "warning")
    assert anomaly.score >= anomaly.threshold == 8.0
    window_ns = 10 * NS
    assert anomaly.onset_ns <= round(start * NS) < anomaly.onset_ns + window_ns
    evidence = anomaly.evidence
    assert evidence["top_peer"] == "critic" and evidence["window_s"] == 10.0
    assert evidence["observed"] > 4 * evidence["expected_mean"]
    assert "messages" in evidence["summary"] and "critic" in evidence["summary"]
    assert len(evidence["observed_previous_windows"]) == 2
    # Hysteresis: quiet windows end the excursion, the next flood is raised again.
    for t in chatter(8, T0_S + 650, 120):
        assert pipeline.process(message(t)) == []
    assert _flood(pipeline, T0_S + 775) == ["message_volume:warning"]


def test_messages_do_not_touch_the_action_families_and_agents_without_pay_nothing() -> None:
    pipeline = DetectorPipeline()
    for i, t in enumerate(poisson_times(9, rate_per_s=3, start_s=T0_S, duration_s=60)):
        pipeline.process(action(t, fingerprint=f"f{i}", agent="quiet"))
        pipeline.process(action(t, fingerprint=f"f{i}", agent="chatty"))
    pipeline.process(message(T0_S + 61, agent="chatty"))
    quiet, chatty = pipeline._agents["quiet"], pipeline._agents["chatty"]
    assert quiet.messages is None and chatty.messages is not None
    assert chatty.actions == quiet.actions
    assert pickle.dumps(chatty.rate) == pickle.dumps(quiet.rate)


def test_an_agent_that_acts_and_messages_stays_small() -> None:
    pipeline = DetectorPipeline()
    times = poisson_times(10, rate_per_s=3, start_s=T0_S, duration_s=3000)
    rng = random.Random(10)
    for i, t in enumerate(times):
        pipeline.process(action(t, fingerprint=f"{i % 7:064x}"))
        if rng.random() < 0.1:
            pipeline.process(message(t + 0.01, size=rng.uniform(200, 4000)))
    per_agent = len(pickle.dumps(pipeline)) - len(pickle.dumps(DetectorPipeline()))
    assert per_agent < 4096 + 1024  # the action families' budget, and the message detector's


def test_a_snapshot_keeps_the_message_baseline() -> None:
    original = DetectorPipeline()
    _warm(original)
    restored = DetectorPipeline()
    assert restored.restore(original.snapshot()) == 1
    assert _flood(restored, T0_S + 605) == ["message_volume:warning"]
    # A pipeline that saw no messages creates the detector at the first and is warming up.
    assert _flood(DetectorPipeline(), T0_S + 605) == []
    assert original.snapshot()[4:6] == _SNAPSHOT_VERSION.to_bytes(2, "little") == b"\x05\x00"


def _version_2_blob(pipeline: DetectorPipeline) -> bytes:
    """A snapshot as version 2 wrote it: no message volume, nor its setting."""
    import struct

    from agentwatch.detectors._families import _AgentState
    from agentwatch.detectors._state import fields

    new_slots = ("messages", "message_level", "message_last_z")
    agents = {}
    for agent in pipeline.agents():
        current = pipeline._agents[agent]
        old = _AgentState()
        for name in fields(_AgentState):
            if name not in new_slots:
                setattr(old, name, getattr(current, name))
        agents[agent] = old
    config = {k: v for k, v in pipeline._config().items() if k != "message_window_s"}
    return b"AWDP" + struct.pack("<H", 2) + pickle.dumps({"config": config, "agents": agents})


def test_a_version_2_snapshot_restores_and_starts_message_volume_afresh() -> None:
    original = DetectorPipeline()
    for i, t in enumerate(poisson_times(11, rate_per_s=3, start_s=T0_S, duration_s=30)):
        original.process(action(t, fingerprint=f"f{i}"))
    restored = DetectorPipeline()
    assert restored.restore(_version_2_blob(original)) == 1
    state = restored._agents["a1"]
    assert state.messages is None and state.message_level == 0
    assert state.actions == original._agents["a1"].actions  # the old baselines survived
    _warm(restored)
    assert _flood(restored, T0_S + 605) == ["message_volume:warning"]
    assert restored.snapshot()[4:6] == (5).to_bytes(2, "little")  # written as the newest


def test_message_settings_are_validated_and_part_of_the_snapshot() -> None:
    with pytest.raises(ValueError, match="window_s"):
        DetectorPipeline(message_window_s=0.0)
    with pytest.raises(ValueError, match="message_warning_z"):
        DetectorPipeline(message_warning_z=-1.0)
    blob = DetectorPipeline(message_window_s=30.0).snapshot()
    with pytest.raises(ValueError, match="detector settings"):
        DetectorPipeline().restore(blob)
