"""kill -9 while receivers are down, then restart: every message delivered once, none repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import FakeClock, LoopbackReceiver
from .crash_child import AGENTS, build, decide


def test_kill_9_while_receivers_are_down_then_restart(tmp_path: Path) -> None:
    hook, control = LoopbackReceiver(), LoopbackReceiver()
    hook.down = control.down = True
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.unit.alerts.crash_child",
            str(tmp_path),
            hook.url,
            control.url,
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AGENTWATCH_", "OTEL_"))},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["ready", "6"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # One attempt per destination (three agents' control URLs, one webhook group queue).
    tried = {r.headers["webhook-id"] for r in hook.requests + control.requests}
    assert len(tried) == 4 and not hook.delivered() and not control.delivered()

    hook.down = control.down = False
    clock = FakeClock(1_700_000_100.0)  # a later time in the new process
    outbox, manager, remediator = build(tmp_path, hook.url, clock)
    try:
        assert outbox.pending() == 6
        # The restarted service sees the same anomalies again: nothing new is decided.
        decide(manager, remediator, clock, control.url)
        assert outbox.pending() == 6
        assert all(remediator.breaker_state(a) == "open" for a in AGENTS)
        for _ in range(20):
            outbox.drain()
            due = outbox.next_due_s()
            if due is None:
                break
            clock.now = max(clock.now, due)
        assert outbox.pending() == 0
        notified = [r.headers["webhook-id"] for r in hook.delivered()]
        commands = [r.headers["webhook-id"] for r in control.delivered()]
        assert len(notified) == len(set(notified)) == 3
        assert len(commands) == len(set(commands)) == 3
        assert sorted(r.json()["agent"] for r in control.delivered()) == list(AGENTS)
        # The restarted process delivered under the ids the killed one had used.
        assert tried <= set(notified) | set(commands)
    finally:
        remediator.shutdown()
        outbox.close()
        hook.close()
        control.close()
