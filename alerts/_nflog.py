"""The notification log and Alertmanager's dedup rules (``DedupStage.needsUpdate``).

One entry per (receiver, group key): the firing and resolved fingerprints last notified and when.
A group notifies when it has firing alerts not notified before, when every alert is resolved after
some were notified as firing, when ``send_resolved`` is on and resolved alerts are new, or when
``repeat_interval`` has passed (strictly, as in Alertmanager: at exactly the interval it waits for
the next flush).
"""

from __future__ import annotations

import threading
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._persist import read_json, write_json_atomic

REASON_NEW_FIRING: Final = "new_firing_alerts"
REASON_ALL_RESOLVED: Final = "all_resolved"
REASON_NEW_RESOLVED: Final = "new_resolved_alerts"
REASON_REPEAT: Final = "repeat_interval_elapsed"
RETENTION_NS: Final = 120 * 3600 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What one receiver was last told about one group."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    timestamp_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "group_key": self.group_key,
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "timestamp_ns": self.timestamp_ns,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> LogEntry:
        return cls(
            str(obj["receiver"]),
            str(obj["group_key"]),
            frozenset(obj["firing"]),
            frozenset(obj["resolved"]),
            int(obj["timestamp_ns"]),
        )


def needs_update(
    entry: LogEntry | None,
    firing: Set[str],
    resolved: Set[str],
    *,
    send_resolved: bool,
    repeat_interval_ns: int,
    now_ns: int,
) -> str | None:
    """Return why the group must notify now (a ``REASON_*``), or None when it must not.

    Pure; mirrors Alertmanager's ``DedupStage.needsUpdate`` rule for rule.
    """
    if entry is None:
        return REASON_NEW_FIRING if firing else None
    if not firing <= entry.firing:
        return REASON_NEW_FIRING
    if not firing:
        # Sent even without send_resolved, to clear the firing alerts from the log.
        return REASON_ALL_RESOLVED if entry.firing else None
    if send_resolved and not resolved <= entry.resolved:
        return REASON_NEW_RESOLVED
    if entry.timestamp_ns < now_ns - repeat_interval_ns:
        return REASON_REPEAT
    return None


class NotificationLog:
    """Entries by (receiver, group key), saved atomically to ``path`` on each change and reloaded.

    Thread-safe; :meth:`log` blocks on an fsync when ``path`` is set.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        raw = read_json(path, []) if path is not None else []
        entries = (LogEntry.from_dict(e) for e in raw)
        self._entries = {(e.receiver, e.group_key): e for e in entries}

    def get(self, receiver: str, group_key: str) -> LogEntry | None:
        """Return the entry, or None when the receiver was never told about the group."""
        with self._lock:
            return self._entries.get((receiver, group_key))

    def log(
        self, receiver: str, group_key: str, firing: Set[str], resolved: Set[str], now_ns: int
    ) -> LogEntry:
        """Record a notification and persist the log."""
        entry = LogEntry(receiver, group_key, frozenset(firing), frozenset(resolved), now_ns)
        with self._lock:
            self._entries[(receiver, group_key)] = entry
            stale = [k for k, e in self._entries.items() if e.timestamp_ns + RETENTION_NS < now_ns]
            for key in stale:
                del self._entries[key]
            if self._path is not None:
                write_json_atomic(self._path, [e.to_dict() for e in self._entries.values()])
        return entry

    def entries(self) -> list[LogEntry]:
        """Every entry, by receiver and group key."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: (e.receiver, e.group_key))
