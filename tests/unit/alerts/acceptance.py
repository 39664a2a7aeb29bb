"""An acceptance framework in Alertmanager's style, on virtual time.

Schedule pushes and resolves at virtual times, run, then expect notifications within [t1, t2] at
real loopback receivers, with exact totals (catching duplicates). Time advances event by event
(the next push, group flush or outbox retry), so hours of virtual time take milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentwatch.alerts import Alert, AlertManager, Outbox, WebhookIntegration

from .conftest import FakeClock, LoopbackReceiver
from .test_signing import SPEC_SECRET, verify

NS = 1_000_000_000
T0 = 1_700_000_000.0


@dataclass
class Got:
    """One notification a receiver accepted, at virtual second ``at`` (relative to T0)."""

    at: float
    payload: dict[str, Any]
    webhook_id: str


@dataclass
class Acceptance:
    tmp_path: Path
    config: Mapping[str, Any]
    servers: Mapping[str, LoopbackReceiver]
    send_resolved: bool = True
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    events: list[tuple[float, int, Callable[[], object]]] = field(default_factory=list)
    got: dict[str, list[Got]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.outbox = Outbox(
            self.tmp_path / "outbox.sqlite3",
            secret=SPEC_SECRET,
            clock=self.clock.time,
            rng=random.Random(7),
        )
        self.manager = self.make_manager()
        self._seen = {name: 0 for name in self.servers}

    def make_manager(self) -> AlertManager:
        integrations = {
            name: WebhookIntegration(s.url, send_resolved=self.send_resolved)
            for name, s in self.servers.items()
        }
        return AlertManager(
            self.config,
            integrations,
            sink=self.outbox.enqueue,
            state_dir=self.tmp_path,
            clock=self.clock.time_ns,
        )

    def push(self, at: float, **labels: str) -> None:
        def run() -> None:
            now = self.clock.time_ns()
            self.manager.push(Alert(labels=labels, starts_at_ns=now), now_ns=now)

        self.events.append((at, len(self.events), run))

    def resolve(self, at: float, **labels: str) -> None:
        self.events.append((at, len(self.events), lambda: self.manager.resolve(labels)))

    def at(self, at: float, action: Callable[[], object]) -> None:
        self.events.append((at, len(self.events), action))

    def run(self, until: float) -> None:
        pending = sorted(self.events)
        self.events = []
        while True:
            now = self.clock.time() - T0
            candidates = [until]
            if pending:
                candidates.append(pending[0][0])
            due = self.manager.next_due_ns()
            if due is not None:
                candidates.append(due / NS - T0)
            retry = self.outbox.next_due_s()
            if retry is not None:
                candidates.append(retry - T0)
            step = max(now, min(candidates))
            if step > until:
                break
            self.clock.now = T0 + step
            while pending and pending[0][0] <= step:
                pending.pop(0)[2]()
            self.manager.tick(self.clock.time_ns())
            self.outbox.drain()
            self._collect(step)
            if step == until and not pending:
                break

    def _collect(self, at: float) -> None:
        for name, server in self.servers.items():
            new = server.requests[self._seen[name] :]
            self._seen[name] = len(server.requests)
            for r in new:
                assert verify(SPEC_SECRET, r.headers, r.body), "every request is signed"
                if 200 <= r.status < 300:
                    got = Got(at, r.json(), r.headers["webhook-id"])
                    self.got.setdefault(name, []).append(got)

    def expect(self, receiver: str, *windows: tuple[float, float]) -> list[Got]:
        """Exactly one notification per window at ``receiver``, and no others."""
        got = self.got.get(receiver, [])
        times = [g.at for g in got]
        assert len(got) == len(windows), f"{receiver}: got notifications at {times}"
        for g, (t1, t2) in zip(got, windows, strict=True):
            assert t1 <= g.at <= t2, f"{receiver}: notification at {g.at}, want [{t1}, {t2}]"
        ids = [g.webhook_id for g in got]
        assert len(set(ids)) == len(ids), "a webhook-id was delivered twice"
        return got
