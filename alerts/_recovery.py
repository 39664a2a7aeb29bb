"""Rollback and failover choices, and incidents with their RTO and RPO."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple, Protocol


class Checkpoint(NamedTuple):
    """One checkpoint an agent recorded: its id, the agent's step count, and when (ns)."""

    checkpoint_id: str
    step: int
    ts_ns: int


class CheckpointLookup(Protocol):
    """Where the remediator finds an agent's checkpoints (the collector reads ClickHouse)."""

    def checkpoints(self, agent: str, /) -> Sequence[tuple[str, int, int]]: ...


def checkpoint_before(
    checkpoints: Sequence[tuple[str, int, int]], onset_ns: int
) -> Checkpoint | None:
    """Return the newest checkpoint recorded strictly before ``onset_ns``, never one after.

    Ties on time go to the higher step. Pure.
    """
    before = [Checkpoint(*c) for c in checkpoints if c[2] < onset_ns]
    return max(before, key=lambda c: (c.ts_ns, c.step), default=None)


def latest_checkpoint(checkpoints: Sequence[tuple[str, int, int]]) -> Checkpoint | None:
    """Return the newest checkpoint, or None when there are none. Pure."""
    return max((Checkpoint(*c) for c in checkpoints), key=lambda c: (c.ts_ns, c.step), default=None)


@dataclass(frozen=True, slots=True)
class Incident:
    """One remediation episode of one agent, from detection until it is healthy again.

    Attributes:
        id: ``<agent>:<detected_ns>``.
        agent: The failing agent.
        kind: ``"breaker"``, ``"rollback"`` or ``"failover"`` (the first action taken).
        anomaly_id: The anomaly that opened it ("" for heartbeat loss).
        detected_ns: When it was detected.
        checkpoint_id: The checkpoint restored ("" when none).
        checkpoint_step: That checkpoint's step (-1 when none).
        failed_step: The agent's step when it failed (-1 when unknown).
        healthy_ns: When the agent (or its standby) was healthy again; 0 while open.
        standby: The standby that took over (failover only).
    """

    id: str
    agent: str
    kind: str
    anomaly_id: str
    detected_ns: int
    checkpoint_id: str = ""
    checkpoint_step: int = -1
    failed_step: int = -1
    healthy_ns: int = 0
    standby: str = ""

    @property
    def rto_s(self) -> float | None:
        """Recovery time: detection to healthy again, in seconds; None while open."""
        return (self.healthy_ns - self.detected_ns) / 1e9 if self.healthy_ns else None

    @property
    def rpo_steps(self) -> int | None:
        """Recovery point: steps lost since the checkpoint used; None without one."""
        if self.checkpoint_step < 0 or self.failed_step < 0:
            return None
        return max(0, self.failed_step - self.checkpoint_step)

    def to_dict(self) -> dict[str, Any]:
        """API JSON, with ``rto_s`` and ``rpo_steps``."""
        return {**asdict(self), "rto_s": self.rto_s, "rpo_steps": self.rpo_steps}


class Incidents:
    """Open and closed incidents, at most one open per agent. Thread-safe; in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Incident] = {}
        self._closed: list[Incident] = []

    def open(self, incident: Incident) -> Incident:
        """Open ``incident`` unless the agent has one open; return the agent's open incident."""
        with self._lock:
            return self._open.setdefault(incident.agent, incident)

    def update(self, agent: str, **changes: Any) -> Incident | None:
        """Change fields of the agent's open incident; None when it has none."""
        with self._lock:
            current = self._open.get(agent)
            if current is None:
                return None
            self._open[agent] = replace(current, **changes)
            return self._open[agent]

    def get_open(self, agent: str) -> Incident | None:
        with self._lock:
            return self._open.get(agent)

    def close(self, agent: str, healthy_ns: int) -> Incident | None:
        """Close the agent's open incident as healthy at ``healthy_ns``; return it."""
        with self._lock:
            current = self._open.pop(agent, None)
            if current is None:
                return None
            done = replace(current, healthy_ns=healthy_ns)
            self._closed.append(done)
            return done

    def list(self) -> list[Incident]:
        """Closed incidents (oldest first), then open ones."""
        with self._lock:
            return [*self._closed, *sorted(self._open.values(), key=lambda i: i.detected_ns)]
