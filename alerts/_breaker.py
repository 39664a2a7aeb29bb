"""Per-agent circuit breakers: CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, and METRICS_ONLY (shadow).

- CLOSED -> OPEN on an anomaly the policy says opens the breaker.
- OPEN -> HALF_OPEN after ``open_wait_s`` (seen by :meth:`AgentBreakers.tick`): probe actions run.
- HALF_OPEN -> CLOSED after ``probe_actions`` normal actions; -> OPEN on a new such anomaly.
- any -> FORCED_OPEN by hand (the kill switch); only :meth:`AgentBreakers.close` leaves it.
- METRICS_ONLY is shadow mode: the same machine runs and every transition is reported, marked
  ``shadow``, but nothing is sent; the agent's published state is ``metrics_only``.

Each agent has a ``version`` that counts its transitions; with the agent it names a transition
uniquely, so the command it causes gets a stable webhook-id even when replayed after a crash.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from agentwatch.sdk.semconv import (
    BREAKER_CLOSED,
    BREAKER_FORCED_OPEN,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
)

from ._persist import read_json, write_json_atomic

_COMPACT_EVERY: Final = 1000  # journal lines folded into the snapshot file at a time

BREAKER_METRICS_ONLY: Final = "metrics_only"
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Transition:
    """One breaker state change, reported to ``on_transition`` (the collector stores it).

    Attributes:
        agent: The agent.
        from_state: The state before.
        to_state: The state after (the machine's state, also in shadow mode).
        reason: Why (the anomaly's summary, "open_wait elapsed", the operator's reason...).
        anomaly_id: The anomaly that caused it ("" when none).
        at_ns: When, ns since the Unix epoch.
        version: The agent's transition count after this one.
        shadow: True in METRICS_ONLY mode: decided and logged, nothing sent.
        manual: True for force_open / close from the API or CLI.
    """

    agent: str
    from_state: str
    to_state: str
    reason: str
    anomaly_id: str
    at_ns: int
    version: int
    shadow: bool = False
    manual: bool = False


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """An agent's breaker as the API shows it (``state`` is what the agent should apply)."""

    agent: str
    state: str
    machine_state: str
    since_ns: int
    probes: int
    reason: str
    anomaly_id: str
    version: int
    shadow: bool


class AgentBreakers:
    """The breakers of every agent, persisted atomically to ``path`` after each transition.

    Thread-safe (one lock). ``before_commit`` runs inside the lock before the state is saved
    (the remediator enqueues the command there, so a crash never loses a committed transition's
    command); ``on_transition`` runs after, outside the lock.

    Args:
        path: JSON file; None keeps state in memory.
        open_wait_s: Time in OPEN before HALF_OPEN.
        probe_actions: Normal actions in HALF_OPEN that close the breaker.
        shadow: New agents start in METRICS_ONLY (shadow) mode.
        clock: Wall clock in ns.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        open_wait_s: float = 60.0,
        probe_actions: int = 3,
        shadow: bool = False,
        clock: Callable[[], int] = time.time_ns,
        before_commit: Callable[[Transition], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        if not open_wait_s >= 0:
            raise ValueError(f"open_wait_s must be >= 0, got {open_wait_s!r}")
        if probe_actions < 1:
            raise ValueError(f"probe_actions must be >= 1, got {probe_actions!r}")
        self._path = path
        self.open_wait_s = open_wait_s
        self.probe_actions = probe_actions
        self.shadow_default = shadow
        self._clock = clock
        self.before_commit = before_commit
        self.on_transition = on_transition
        self._lock = threading.RLock()
        self._journal = path.with_name(path.name + ".journal") if path is not None else Path()
        self._journal_lines = 0
        self._agents: dict[str, BreakerStatus] = self._load(path) if path is not None else {}

    def _get(self, agent: str) -> BreakerStatus:
        found = self._agents.get(agent)
        if found is None:
            found = BreakerStatus(agent, "", BREAKER_CLOSED, 0, 0, "", "", 0, self.shadow_default)
        return found

    def status(self, agent: str) -> BreakerStatus:
        """The agent's breaker (CLOSED, or METRICS_ONLY in shadow mode, when never seen)."""
        with self._lock:
            return self._published(self._get(agent))

    def state(self, agent: str) -> str:
        """What the agent should apply: ``closed``, ``open``, ``half_open``, ``forced_open`` or
        ``metrics_only``."""
        return self.status(agent).state

    def statuses(self) -> list[BreakerStatus]:
        """Every agent seen, by name."""
        with self._lock:
            return [self._published(s) for _, s in sorted(self._agents.items())]

    @staticmethod
    def _published(s: BreakerStatus) -> BreakerStatus:
        shown = (
            BREAKER_METRICS_ONLY if s.shadow and s.machine_state != BREAKER_FORCED_OPEN else None
        )
        return replace(s, state=shown or s.machine_state)

    def _move(
        self,
        current: BreakerStatus,
        to: str,
        reason: str,
        anomaly_id: str,
        now: int,
        *,
        manual: bool = False,
        shadow: bool | None = None,
    ) -> Transition:
        shadow_now = current.shadow if shadow is None else shadow
        t = Transition(
            current.agent,
            self._published(current).state,
            to,
            reason,
            anomaly_id,
            now,
            current.version + 1,
            shadow=shadow_now and to != BREAKER_FORCED_OPEN,
            manual=manual,
        )
        if self.before_commit is not None:
            self.before_commit(t)
        self._agents[current.agent] = BreakerStatus(
            current.agent, "", to, now, 0, reason, anomaly_id, t.version, shadow_now
        )
        self._save(current.agent)
        return t

    def _report(self, t: Transition | None) -> Transition | None:
        if t is not None and self.on_transition is not None:
            self.on_transition(t)
        return t

    def on_anomaly(
        self, agent: str, anomaly_id: str, reason: str, now_ns: int | None = None
    ) -> Transition | None:
        """An anomaly calls for the breaker: CLOSED or HALF_OPEN -> OPEN; otherwise nothing."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            current = self._get(agent)
            t = None
            if current.machine_state in (BREAKER_CLOSED, BREAKER_HALF_OPEN):
                t = self._move(current, BREAKER_OPEN, reason, anomaly_id, now)
        return self._report(t)

    def tick(self, now_ns: int | None = None) -> list[Transition]:
        """Move every OPEN breaker whose wait is over to HALF_OPEN."""
        now = self._clock() if now_ns is None else now_ns
        wait = int(self.open_wait_s * NS)
        with self._lock:
            due = [
                s
                for s in self._agents.values()
                if s.machine_state == BREAKER_OPEN and s.since_ns + wait <= now
            ]
            moved = [
                self._move(s, BREAKER_HALF_OPEN, "open_wait elapsed", s.anomaly_id, now)
                for s in due
            ]
        for t in moved:
            self._report(t)
        return moved

    def record_normal_action(self, agent: str, now_ns: int | None = None) -> Transition | None:
        """Count a normal probe action; the ``probe_actions``-th in HALF_OPEN closes the breaker."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            current = self._get(agent)
            if current.machine_state != BREAKER_HALF_OPEN:
                return None
            if current.probes + 1 < self.probe_actions:
                self._agents[agent] = replace(current, probes=current.probes + 1)
                self._save(agent)
                return None
            reason = f"{self.probe_actions} normal probe actions"
            t = self._move(current, BREAKER_CLOSED, reason, current.anomaly_id, now)
        return self._report(t)

    def force_open(self, agent: str, reason: str, now_ns: int | None = None) -> Transition | None:
        """The kill switch: FORCED_OPEN until :meth:`close`, even in shadow mode."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            current = self._get(agent)
            t = None
            if current.machine_state != BREAKER_FORCED_OPEN:
                t = self._move(current, BREAKER_FORCED_OPEN, reason, "", now, manual=True)
        return self._report(t)

    def close(self, agent: str, reason: str, now_ns: int | None = None) -> Transition | None:
        """Close by hand from any state (no-op when already CLOSED)."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            current = self._get(agent)
            t = None
            if current.machine_state != BREAKER_CLOSED:
                t = self._move(current, BREAKER_CLOSED, reason, "", now, manual=True)
        return self._report(t)

    def set_metrics_only(self, agent: str, on: bool) -> None:
        """Turn shadow mode on or off for one agent (its machine state is kept)."""
        with self._lock:
            self._agents[agent] = replace(self._get(agent), shadow=on)
            self._save(agent)

    def _save(self, agent: str) -> None:
        """Append the agent's new status to the journal (one fsync, whatever the fleet size);
        every ``_COMPACT_EVERY`` lines, fold the journal into the snapshot file."""
        if self._path is None:
            return
        line = json.dumps(asdict(self._agents[agent]), separators=(",", ":"), sort_keys=True)
        with open(self._journal, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._journal_lines += 1
        if self._journal_lines >= _COMPACT_EVERY:
            # Snapshot first, then truncate: a crash between replays lines whose last state per
            # agent is the snapshot's, so the result is the same.
            write_json_atomic(self._path, [asdict(s) for s in self._agents.values()])
            with open(self._journal, "w", encoding="utf-8") as f:
                f.flush()
                os.fsync(f.fileno())
            self._journal_lines = 0

    def _load(self, path: Path) -> dict[str, BreakerStatus]:
        agents = {s["agent"]: BreakerStatus(**s) for s in read_json(path, [])}
        if self._journal.exists():
            for line in self._journal.read_text(encoding="utf-8").splitlines():
                try:
                    status = BreakerStatus(**json.loads(line))
                except (ValueError, TypeError):  # a torn last line from a crash mid-write
                    continue
                agents[status.agent] = status
                self._journal_lines += 1
        return agents

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every agent's breaker as API JSON."""
        return [asdict(s) for s in self.statuses()]
