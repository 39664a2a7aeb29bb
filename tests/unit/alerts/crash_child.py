"""Run by test_crash.py in a subprocess that is killed with SIGKILL once it prints "ready".

It decides three breaker openings and three alert notifications while every receiver answers 503,
so the outbox holds all six when the process dies.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from agentwatch.alerts import (
    AgentBreakers,
    AlertManager,
    Dispatcher,
    Outbox,
    RemediationPolicy,
    Remediator,
    WebhookIntegration,
)

from .conftest import FakeAnomaly, FakeClock
from .test_remediator import RecordingSender
from .test_signing import SPEC_SECRET

AGENTS = ("a1", "a2", "a3")
CONFIG = {"route": {"receiver": "team", "group_by": ["agent"]}, "resolve_timeout": "1d"}


def build(state: Path, hook_url: str, clock: FakeClock) -> tuple[Outbox, AlertManager, Remediator]:
    outbox = Outbox(state / "outbox.sqlite3", secret=SPEC_SECRET, clock=clock.time)
    manager = AlertManager(
        CONFIG,
        {"team": WebhookIntegration(hook_url)},
        sink=outbox.enqueue,
        state_dir=state,
        clock=clock.time_ns,
    )
    remediator = Remediator(
        RemediationPolicy(),
        RecordingSender(),
        dispatcher=Dispatcher(workers=1),
        clock=clock.time_ns,
        breakers=AgentBreakers(state / "breakers.json", clock=clock.time_ns),
        outbox=outbox,
    )
    return outbox, manager, remediator


def decide(manager: AlertManager, remediator: Remediator, clock: FakeClock, control: str) -> None:
    for agent in AGENTS:
        anomaly = FakeAnomaly(id=agent * 16, agent=agent, detected_ns=clock.time_ns())
        remediator.handle(anomaly, control)
        manager.push(anomaly)
    clock.advance(30)
    manager.tick()


def main() -> None:
    state, hook_url, control_url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    clock = FakeClock()
    outbox, manager, remediator = build(state, hook_url, clock)
    decide(manager, remediator, clock, control_url)
    outbox.drain()  # every receiver is down: all six stay pending
    print("ready", outbox.pending(), flush=True)
    signal.pause()  # until the parent's SIGKILL


if __name__ == "__main__":
    main()
