"""Snapshot and restore: baselines survive a restart and move between replicas."""

from __future__ import annotations

import pytest

from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind, Severity

NS = 1_000_000_000


def _warm(pipeline: DetectorPipeline, agent: str, seconds: int = 30) -> None:
    for s in range(seconds):
        for k in range(3):  # a steady 3 actions per second
            pipeline.process(
                AgentEvent(
                    agent, "c", EventKind.ACTION, s * NS + k * 300_000_000, fingerprint=f"{s}-{k}"
                )
            )


def _spike(pipeline: DetectorPipeline, agent: str, at_s: int) -> list[Severity]:
    found = []
    for k in range(40):
        event = AgentEvent(
            agent, "c", EventKind.ACTION, at_s * NS + k * 10_000_000, fingerprint=f"x{k}"
        )
        found += [a.severity for a in pipeline.process(event)]
    return found


def test_a_restored_pipeline_keeps_its_baselines() -> None:
    original = DetectorPipeline()
    _warm(original, "a1")
    blob = original.snapshot()
    restored = DetectorPipeline()
    assert restored.restore(blob) == 1
    assert Severity.CRITICAL in _spike(restored, "a1", 31)
    assert _spike(DetectorPipeline(), "a1", 31) == []  # a fresh one is still warming up


def test_part_of_the_agents_can_be_handed_over_and_merged() -> None:
    source = DetectorPipeline()
    _warm(source, "a1")
    _warm(source, "a2")
    target = DetectorPipeline()
    _warm(target, "b1")
    assert target.restore(source.snapshot(["a2", "unknown"])) == 1
    assert sorted(target.agents()) == ["a2", "b1"]
    assert target.restore(source.snapshot(["a1"]), merge=False) == 1
    assert target.agents() == ["a1"]


def test_foreign_or_mismatched_snapshots_are_refused() -> None:
    with pytest.raises(ValueError, match="not an agentwatch detector snapshot"):
        DetectorPipeline().restore(b"junk")
    blob = DetectorPipeline(rate_window_s=2.0).snapshot()
    with pytest.raises(ValueError, match="detector settings"):
        DetectorPipeline().restore(blob)
    future = blob[:4] + (99).to_bytes(2, "little") + blob[6:]
    with pytest.raises(ValueError, match="version 99"):
        DetectorPipeline().restore(future)


def test_a_new_agent_starts_from_its_cohorts_baseline() -> None:
    pipeline = DetectorPipeline()
    _warm(pipeline, "a1")  # cohort "c" now has a warm member
    assert Severity.CRITICAL in _spike(pipeline, "newcomer", 31)  # flagged at once
    other_cohort = DetectorPipeline()
    _warm(other_cohort, "a1")
    spike = [
        AgentEvent("b1", "other", EventKind.ACTION, 31 * NS + k * 10_000_000, fingerprint=f"x{k}")
        for k in range(40)
    ]
    assert [a for e in spike for a in other_cohort.process(e)] == []  # no baseline: warming up


def _version_1_blob(pipeline: DetectorPipeline) -> bytes:
    """A snapshot as version 1 wrote it: loop and rate state only, version 1's settings."""
    import pickle
    import struct

    from agentwatch.detectors._families import _AgentState

    old_slots = ("loop", "loop_level", "loop_onset_ns", "rate", "rate_last_z", "rate_level")
    agents = {}
    for agent in pipeline.agents():
        current = pipeline._agents[agent]
        old = _AgentState()
        for name in old_slots:
            setattr(old, name, getattr(current, name))
        agents[agent] = old
    config = {k: v for k, v in pipeline._config().items() if k not in ("goal_stall_actions",)}
    state = {"config": config, "agents": agents}
    return b"AWDP" + struct.pack("<H", 1) + pickle.dumps(state)


def test_a_version_1_snapshot_restores_with_fresh_new_families() -> None:
    original = DetectorPipeline()
    _warm(original, "a1")
    restored = DetectorPipeline()
    assert restored.restore(_version_1_blob(original)) == 1
    assert Severity.CRITICAL in _spike(restored, "a1", 31)  # the rate baseline survived
    # The families version 1 did not have start afresh and work.
    beat = AgentEvent("a1", "c", EventKind.HEARTBEAT, 40 * NS, key="running", value=1.0)
    decision = AgentEvent("a1", "c", EventKind.DECISION, 41 * NS, key="x", duration_s=0.2)
    assert restored.process(beat) == [] and restored.process(decision) == []
    assert restored.snapshot()[4:6] == (5).to_bytes(2, "little")  # written as the newest


def test_a_snapshot_of_the_interpreted_0_1_0_detectors_restores_and_goes_on_the_same() -> None:
    # Written by agentwatch 0.1.0 (commit 1bdb4d5), interpreted, before the detectors were
    # compiled and pickled through _state.py (slotted classes then pickled as (None, slots)):
    # restored here, compiled or not, the agents go on to the anomalies that code raised.
    import json
    from pathlib import Path

    from tests.unit.detectors.upgrade_stream import continuation, raised

    data = Path(__file__).parent / "data"
    restored = DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)
    assert restored.restore((data / "snapshot-v5-interpreted.bin").read_bytes()) == 6
    expected = json.loads((data / "snapshot-v5-interpreted.json").read_text())
    assert {row[0] for row in expected} >= {"action_rate", "loop", "decision_drift"}
    assert raised(restored, continuation()) == expected
