"""The stream behind data/snapshot-v5-interpreted.bin (test_snapshot.py's upgrade test).

Self-contained on purpose (only ``AgentEvent`` and ``random``): the snapshot was written by
agentwatch 0.1.0's interpreted detectors (commit 1bdb4d5) after :func:`warm_events`, and the
anomalies that code then raised on :func:`continuation` are recorded beside it. Changing either
function makes the recorded files meaningless; leave them as they are.

Regenerate (only with that commit's detectors on ``PYTHONPATH``)::

    python tests/unit/detectors/upgrade_stream.py tests/unit/detectors/data
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from agentwatch.detectors import AgentEvent, EventKind

NS = 1_000_000_000
AGENTS = [f"agent-{i}" for i in range(6)]
TOOLS = ["search", "read", "write", "summarize", "delete"]


def _normal(rng: random.Random, agent: str, start_s: float, end_s: float) -> list[AgentEvent]:
    """About 2 calls a second of a usual tool mix, a heartbeat every 5 s, a decision every 4 s, a
    message every 10 s and goal progress every 20 s."""
    events = []
    t = start_s
    while t < end_s:
        t += rng.expovariate(2.0)
        tool = rng.choices(TOOLS, weights=[40, 30, 20, 9, 1])[0]
        events.append(
            AgentEvent(
                agent,
                "cohort",
                EventKind.ACTION,
                round(t * NS),
                key=tool,
                fingerprint=f"{tool}-{rng.randrange(50)}",
                error=rng.random() < 0.02,
            )
        )
    for s in range(int(start_s), int(end_s)):
        ts = s * NS + 1
        if s % 5 == 0:
            events.append(
                AgentEvent(agent, "cohort", EventKind.HEARTBEAT, ts, key="running", value=5.0)
            )
        if s % 4 == 1:
            duration = rng.uniform(0.2, 0.6)
            events.append(
                AgentEvent(agent, "cohort", EventKind.DECISION, ts, key="plan", duration_s=duration)
            )
        if s % 10 == 2:
            events.append(
                AgentEvent(agent, "cohort", EventKind.MESSAGE, ts, key="peer", value=512.0)
            )
        if s % 20 == 3:
            progress = min(1.0, s / 600)
            events.append(
                AgentEvent(agent, "cohort", EventKind.GOAL, ts, key="goal-1", value=progress)
            )
    return events


def _ordered(events: list[AgentEvent]) -> list[AgentEvent]:
    return sorted(events, key=lambda e: (e.ts_ns, e.agent, e.kind.value))


def warm_events() -> list[AgentEvent]:
    """300 s of six normal agents."""
    rng = random.Random(1)
    return _ordered([e for agent in AGENTS for e in _normal(rng, agent, 0.0, 300.0)])


def continuation() -> list[AgentEvent]:
    """60 s more: agent-0 floods calls 10x for 10 s, agent-1 loops on one call, agent-2 turns
    to the destructive tool; the others stay normal."""
    rng = random.Random(2)
    events = [e for agent in AGENTS for e in _normal(rng, agent, 300.0, 360.0)]
    for k in range(200):
        events.append(
            AgentEvent(AGENTS[0], "cohort", EventKind.ACTION, round((320 + k * 0.05) * NS),
                       key="search", fingerprint=f"flood-{k}")
        )  # fmt: skip
    for k in range(8):
        events.append(
            AgentEvent(AGENTS[1], "cohort", EventKind.ACTION, round((330 + k * 0.1) * NS),
                       key="read", fingerprint="read-same")
        )  # fmt: skip
    for k in range(40):
        events.append(
            AgentEvent(AGENTS[2], "cohort", EventKind.ACTION, round((340 + k * 0.5) * NS),
                       key="delete", fingerprint=f"delete-{k}")
        )  # fmt: skip
    return _ordered(events)


def raised(pipeline: object, events: list[AgentEvent]) -> list[list[object]]:
    """The anomalies ``pipeline`` raises on ``events``: detector, agent, severity, onset."""
    return [
        [a.detector, a.agent, a.severity.value, a.onset_ns]
        for e in events
        for a in pipeline.process(e)  # type: ignore[attr-defined]
    ]


if __name__ == "__main__":
    from agentwatch.detectors import DetectorPipeline

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    pipeline = DetectorPipeline(clock=lambda: 0, id_factory=lambda: "0" * 32)
    for event in warm_events():
        pipeline.process(event)
    (out / "snapshot-v5-interpreted.bin").write_bytes(pipeline.snapshot())
    after = raised(pipeline, continuation())
    (out / "snapshot-v5-interpreted.json").write_text(json.dumps(after, indent=1) + "\n")
    print(f"{len(after)} anomalies after the snapshot", file=sys.stderr)
