"""What the service knows about each agent: cohort, control URL, liveness."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class AgentInfo:
    """One agent as seen through its spans."""

    agent: str
    service: str
    first_seen_ns: int
    last_seen_ns: int
    last_heartbeat_ns: int = 0
    control_url: str = ""
    spans: int = 0
    heartbeat_interval_s: float = 0.0
    lost: bool = False
    status: str = ""  # as its latest heartbeat reported it

    def to_json(self) -> dict[str, object]:
        return {
            "agent": self.agent,
            "service": self.service,
            "first_seen_ns": self.first_seen_ns,
            "last_seen_ns": self.last_seen_ns,
            "last_heartbeat_ns": self.last_heartbeat_ns,
            "control_url": self.control_url,
            "spans": self.spans,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "lost": self.lost,
            "status": self.status,
        }


_FIELDS = tuple(f.name for f in fields(AgentInfo))


class AgentRegistry:
    """Agents keyed by instance id; an agent registers itself through its heartbeat.

    Thread-safe.
    """

    def __init__(self) -> None:
        self._agents: dict[str, AgentInfo] = {}
        self._lock = threading.Lock()

    def observe(
        self,
        agent: str,
        service: str,
        ts_ns: int,
        *,
        heartbeat: bool,
        control_url: str,
        interval_s: float = 0.0,
        status: str = "",
    ) -> None:
        with self._lock:
            info = self._agents.get(agent)
            if info is None:
                info = self._agents[agent] = AgentInfo(agent, service, ts_ns, ts_ns)
            info.spans += 1
            info.last_seen_ns = max(info.last_seen_ns, ts_ns)
            if heartbeat:
                if ts_ns >= info.last_heartbeat_ns and status:
                    info.status = status
                info.last_heartbeat_ns = max(info.last_heartbeat_ns, ts_ns)
                info.lost = False
                if control_url:
                    info.control_url = control_url
                if interval_s > 0:
                    info.heartbeat_interval_s = interval_s

    def get(self, agent: str) -> AgentInfo | None:
        with self._lock:
            return self._agents.get(agent)

    def control_url(self, agent: str) -> str | None:
        with self._lock:
            info = self._agents.get(agent)
            return info.control_url or None if info else None

    def mark_lost(self, agent: str) -> bool:
        """Flag an agent lost; False when it already was (report a loss once)."""
        with self._lock:
            info = self._agents.get(agent)
            if info is None or info.lost:
                return False
            info.lost = True
            return True

    def restore(self, items: list[dict[str, Any]]) -> int:
        """Load agents saved with :meth:`AgentInfo.to_json` (a restart: an agent that died while
        the service was down is still known, and found lost by its old last heartbeat; one
        already reported lost is not reported again). Agents already known are kept as they are.

        Raises:
            ValueError: an item is not such an object (naming its field).
        """
        loaded = []
        for item in items:
            try:
                info = AgentInfo(**{name: item[name] for name in _FIELDS if name in item})
            except TypeError as e:
                raise ValueError(f"not a saved agent: {e}") from None
            loaded.append(info)
        with self._lock:
            for info in loaded:
                self._agents.setdefault(info.agent, info)
        return len(loaded)

    def all(self) -> list[AgentInfo]:
        with self._lock:
            return sorted(self._agents.values(), key=lambda a: a.agent)

    def __len__(self) -> int:
        with self._lock:
            return len(self._agents)
