"""Silences: mute alerts whose labels match, between a start and an end time.

States as in Alertmanager: pending before ``starts_at``, active until ``ends_at``, expired after.
Expiring an active silence ends it now; expiring a pending one makes it start and end now.
"""

from __future__ import annotations

import builtins
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from ._labels import Labels, Matcher, matches_all, parse_matchers
from ._persist import read_json, write_json_atomic

STATE_PENDING: Final = "pending"
STATE_ACTIVE: Final = "active"
STATE_EXPIRED: Final = "expired"
RETENTION_NS: Final = 120 * 3600 * 1_000_000_000
"""Expired silences are kept this long (Alertmanager's default data retention, 120 h)."""


class SilenceError(ValueError):
    """A silence request was refused; ``silence_id`` names the silence when there is one."""

    def __init__(self, message: str, silence_id: str = "") -> None:
        super().__init__(message)
        self.silence_id = silence_id


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence. Immutable; :class:`Silences` replaces it on change."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ns: int
    ends_at_ns: int
    created_by: str = ""
    comment: str = ""
    updated_at_ns: int = 0

    def state(self, now_ns: int) -> str:
        """``"pending"``, ``"active"`` or ``"expired"`` at ``now_ns``."""
        if now_ns < self.starts_at_ns:
            return STATE_PENDING
        return STATE_ACTIVE if now_ns < self.ends_at_ns else STATE_EXPIRED

    def mutes(self, labels: Labels, now_ns: int) -> bool:
        """True when active at ``now_ns`` and every matcher matches ``labels``."""
        return self.state(now_ns) == STATE_ACTIVE and matches_all(self.matchers, labels)

    def to_dict(self, now_ns: int | None = None) -> dict[str, Any]:
        """Return API JSON (with ``state`` when ``now_ns`` is given)."""
        out: dict[str, Any] = {
            "id": self.id,
            "matchers": [m.to_dict() for m in self.matchers],
            "starts_at_ns": self.starts_at_ns,
            "ends_at_ns": self.ends_at_ns,
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at_ns": self.updated_at_ns,
        }
        if now_ns is not None:
            out["state"] = self.state(now_ns)
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Silence:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(obj["id"]),
            matchers=parse_matchers(obj["matchers"]),
            starts_at_ns=int(obj["starts_at_ns"]),
            ends_at_ns=int(obj["ends_at_ns"]),
            created_by=str(obj.get("created_by", "")),
            comment=str(obj.get("comment", "")),
            updated_at_ns=int(obj.get("updated_at_ns", 0)),
        )


class Silences:
    """The set of silences, persisted atomically to ``path`` on every change and reloaded.

    Thread-safe (one lock); every mutating call blocks on an fsync when ``path`` is set.

    Args:
        path: The JSON file; None keeps silences in memory only.
        clock: Wall clock in ns (virtual time in tests).
        on_change: Called after each change (the engine re-evaluates muting).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Callable[[], int],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._path = path
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        raw = read_json(path, []) if path is not None else []
        self._by_id: dict[str, Silence] = {s["id"]: Silence.from_dict(s) for s in raw}

    def create(
        self,
        matchers: Iterable[str | Mapping[str, str] | Matcher],
        *,
        ends_at_ns: int,
        starts_at_ns: int | None = None,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        """Create a silence (starting now unless ``starts_at_ns`` says otherwise).

        Raises:
            SilenceError: No matchers, only matchers that match the empty string, an end not after
                the start, or an end in the past.
        """
        now = self._clock()
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.from_obj(m) for m in matchers)
        if not parsed:
            raise SilenceError("matchers must not be empty")
        if all(m.matches({}) for m in parsed):
            raise SilenceError("at least one matcher must not match the empty string")
        start = now if starts_at_ns is None else max(starts_at_ns, now)
        if ends_at_ns <= start:
            raise SilenceError(f"ends_at_ns must be after starts_at_ns, got {ends_at_ns}")
        silence = Silence(uuid.uuid4().hex, parsed, start, ends_at_ns, created_by, comment, now)
        with self._lock:
            self._by_id[silence.id] = silence
            self._save()
        self._changed()
        return silence

    def expire(self, silence_id: str) -> Silence:
        """Expire a silence now.

        Raises:
            SilenceError: Unknown or already expired.
        """
        now = self._clock()
        with self._lock:
            current = self._by_id.get(silence_id)
            if current is None:
                raise SilenceError(f"no silence {silence_id!r}", silence_id)
            state = current.state(now)
            if state == STATE_EXPIRED:
                raise SilenceError(f"silence {silence_id!r} is already expired", silence_id)
            start = now if state == STATE_PENDING else current.starts_at_ns
            expired = replace(current, starts_at_ns=start, ends_at_ns=now, updated_at_ns=now)
            self._by_id[silence_id] = expired
            self._save()
        self._changed()
        return expired

    def get(self, silence_id: str) -> Silence | None:
        """Return the silence, or None."""
        with self._lock:
            return self._by_id.get(silence_id)

    def list(self, state: str | None = None) -> builtins.list[Silence]:
        """Return silences (in one ``state`` when given), oldest first; drops long-expired ones."""
        now = self._clock()
        with self._lock:
            self._gc(now)
            found = sorted(self._by_id.values(), key=lambda s: (s.updated_at_ns, s.id))
        return [s for s in found if state is None or s.state(now) == state]

    def muted_by(self, labels: Labels, now_ns: int) -> builtins.list[str]:
        """Return the ids of the active silences muting ``labels``."""
        with self._lock:
            return sorted(s.id for s in self._by_id.values() if s.mutes(labels, now_ns))

    def _gc(self, now: int) -> None:
        old = [i for i, s in self._by_id.items() if s.ends_at_ns + RETENTION_NS < now]
        for silence_id in old:
            del self._by_id[silence_id]
        if old:
            self._save()

    def _save(self) -> None:
        if self._path is not None:
            write_json_atomic(self._path, [s.to_dict() for s in self._by_id.values()])

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
