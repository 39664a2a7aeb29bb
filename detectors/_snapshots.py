"""Pipeline snapshots: versioned bytes of the agents' learned state, and their restore.

A snapshot is the magic ``AWDP``, a little-endian ``uint16`` version, then a pickle of the
settings that shape the baselines (:meth:`PipelineSnapshots._config`), the agents'
:class:`~agentwatch.detectors._families._AgentState` and the cohorts' session models
(:class:`~agentwatch.detectors._session_pattern.CohortSessions`). Pickles name classes by module:
``_AgentState`` stays importable from ``_families`` (versions 2 and up) and ``_pipeline``
(version 1), and the detector classes from their modules.
"""

from __future__ import annotations

import pickle
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from agentwatch.detectors._families import _AgentState
from agentwatch.detectors._families_health import HealthHandlers
from agentwatch.detectors._session_pattern import CohortSessions
from agentwatch.detectors._state import fields, restore, state_of

__all__ = ["PipelineSnapshots"]

_SNAPSHOT_MAGIC = b"AWDP"
# 2: the families beyond loop and action rate; 3: message volume; 4: the cohorts' sessions;
# 5: the action rate's pace is a CUSUM over tiers of gaps (an older pace learns afresh)
_SNAPSHOT_VERSION = 5
_SNAPSHOT_VERSIONS = (1, 2, 3, 4, 5)  # restorable; an older agent gets fresh families it lacked


def _new_id() -> str:
    return uuid.uuid4().hex


class PipelineSnapshots(HealthHandlers):
    """:class:`DetectorPipeline`'s :meth:`snapshot` and :meth:`restore`, and its pickling.

    A mix-in: the pipeline holds the settings and the agents, and makes a fresh agent state
    (``_new_state``). Not thread-safe (serialize with :meth:`DetectorPipeline.process`); no I/O.
    """

    loop_min_repeats: int
    rate_window_s: float
    rate_warmup_windows: int
    rate_alpha: float
    rate_max_gap_windows: int
    goal_stall_actions: int
    message_window_s: float
    _agents: dict[str, _AgentState]
    _sessions: CohortSessions
    session_patterns: bool
    session_min_sessions: int
    clock: Callable[[], int]
    id_factory: Callable[[], str]

    def _new_state(self) -> _AgentState:
        """A fresh agent state with the pipeline's settings (the pipeline's)."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return state_of(self, skip=("clock", "id_factory"))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # _mix_exemplars: absent when pickled before cold agents adopted their cohort's tool mix
        restore(self, {"_mix_exemplars": {}, **state})
        if "_sessions" not in state:  # pickled before the session family
            self.session_patterns, self._sessions = False, CohortSessions()
            self.session_min_sessions = self._sessions.min_sessions
        self.clock = time.time_ns
        self.id_factory = _new_id

    def snapshot(self, agents: Iterable[str] | None = None) -> bytes:
        """Versioned bytes of the learned state of ``agents`` (default: every agent).

        A restart restores it (baselines survive); a replica handing cohorts to another sends
        the snapshot of their agents. The payload is a pickle: restore only snapshots this
        service wrote (a local file or an authenticated admin API), never untrusted input.
        """
        wanted = (
            self._agents
            if agents is None
            else {a: self._agents[a] for a in agents if a in self._agents}
        )
        # The cohorts' session models are shared by their agents: all of them go along (a
        # hand-off moves whole cohorts, whose models then replace the receiver's of that name).
        state = {"config": self._config(), "agents": dict(wanted), "sessions": self._sessions}
        return _SNAPSHOT_MAGIC + struct.pack("<H", _SNAPSHOT_VERSION) + pickle.dumps(state)

    def restore(self, blob: bytes, *, merge: bool = True) -> int:
        """Load a :meth:`snapshot`; returns how many agents it held.

        Older versions restore too: version 1 (loop and action rate only), version 2 (before
        message volume) and version 3 (before the cohorts' session models); their agents keep
        the baselines they had and start the other families afresh.

        Args:
            blob: The snapshot.
            merge: Keep agents not in the snapshot (a hand-off); False replaces everything.

        Raises:
            ValueError: Not a snapshot, an unknown version, or detector settings that differ
                from this pipeline's (its baselines would mean something else).
        """
        header = len(_SNAPSHOT_MAGIC) + 2
        if blob[: len(_SNAPSHOT_MAGIC)] != _SNAPSHOT_MAGIC or len(blob) < header:
            raise ValueError("blob is not an agentwatch detector snapshot")
        (version,) = struct.unpack("<H", blob[len(_SNAPSHOT_MAGIC) : header])
        if version not in _SNAPSHOT_VERSIONS:
            raise ValueError(
                f"snapshot version {version} is not supported (want one of {_SNAPSHOT_VERSIONS})"
            )
        state = pickle.loads(blob[header:])
        config = self._config()
        if version < _SNAPSHOT_VERSION:  # it knew fewer settings: compare those
            config = {k: v for k, v in config.items() if k in state["config"]}
        if state["config"] != config:
            raise ValueError(
                f"snapshot was taken with detector settings {state['config']}, "
                f"this pipeline has {config}"
            )
        agents: dict[str, _AgentState] = state["agents"]
        if version < _SNAPSHOT_VERSION:
            for agent_state in agents.values():
                fresh = self._new_state()
                for name in fields(_AgentState):
                    if not hasattr(agent_state, name):
                        setattr(agent_state, name, getattr(fresh, name))
        if not merge:
            self._agents.clear()
            self._sessions.clear()
        self._agents.update(agents)
        if "sessions" in state:  # version 4 on
            self._sessions.update(state["sessions"])
        return len(agents)

    def _config(self) -> dict[str, Any]:
        """The settings the baselines depend on; a restore needs the snapshot's to match."""
        return {
            "loop_min_repeats": self.loop_min_repeats,
            "rate_window_s": self.rate_window_s,
            "rate_warmup_windows": self.rate_warmup_windows,
            "rate_alpha": self.rate_alpha,
            "rate_max_gap_windows": self.rate_max_gap_windows,
            "goal_stall_actions": self.goal_stall_actions,
            "message_window_s": self.message_window_s,
        }
