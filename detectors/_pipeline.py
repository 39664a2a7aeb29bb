"""The per-agent pipeline: events in, thresholded anomalies with evidence out."""

from __future__ import annotations

import pickle
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from agentwatch.detectors._loop import LoopDetector
from agentwatch.detectors._rate import ActionRateDetector
from agentwatch.detectors._types import AgentEvent, Anomaly, EventKind, Severity

__all__ = ["DetectorPipeline"]

_NS_PER_S = 1_000_000_000
_LOOP = "loop"
_ACTION_RATE = "action_rate"


def _new_id() -> str:
    return uuid.uuid4().hex


def _level(score: float, warning: float, critical: float) -> int:
    """0 below ``warning``, then ``Severity.rank`` of the band ``score`` falls in."""
    if score >= critical:
        return Severity.CRITICAL.rank
    if score >= warning:
        return Severity.WARNING.rank
    return 0


_SEVERITY_BY_RANK = {s.rank: s for s in Severity}


class _AgentState:
    """One agent's detectors and hysteresis; a few hundred bytes pickled."""

    __slots__ = ("loop", "loop_level", "loop_onset_ns", "rate", "rate_last_z", "rate_level")

    def __init__(self, loop: LoopDetector, rate: ActionRateDetector) -> None:
        self.loop = loop
        self.loop_onset_ns = 0  # event time of the current run's first call
        self.loop_level = 0  # highest severity rank already raised for the current run
        self.rate = rate
        self.rate_last_z = 0.0  # score of the open window's latest event, i.e. its highest
        self.rate_level = 0  # highest severity rank already raised in the current excursion


_SNAPSHOT_MAGIC = b"AWDP"
_SNAPSHOT_VERSION = 1


class DetectorPipeline:
    """Keys events by agent, runs the per-agent detectors, thresholds with hysteresis.

    Each agent (``AgentEvent.agent``) gets, lazily, a :class:`LoopDetector` and an
    :class:`ActionRateDetector`. Only ``EventKind.ACTION`` events feed them in this cut; other
    events are accepted and ignored. Each action is scored, then learned (river's order); an
    action without a fingerprint feeds the rate detector only.

    Thresholds and hysteresis:

    * ``loop``: WARNING when a run of identical calls reaches ``loop_min_repeats``, CRITICAL once
      when the same run reaches twice that; nothing more for that run. A new run re-arms. The onset
      is the first call of the run.
    * ``action_rate``: WARNING when the open window's z-score reaches ``rate_warning_z``, CRITICAL
      once when it reaches ``rate_critical_z``; at most one of each per excursion. The excursion
      ends, and the pipeline re-arms, when a window closes scoring below ``rate_warning_z`` or an
      empty window passes. The onset is the start of the window.

    A new agent starts from its cohort's (``service.name``) rate baseline: that of the cohort's
    agent whose warm baseline most recently closed a window, so it is not blind during its own
    warm-up. Not yet: eviction of idle agents other than :meth:`forget`, the other detector
    families of DESIGN.md.

    The pipeline pickles (a snapshot keeps every baseline and hysteresis state), except ``clock``
    and ``id_factory``: they are left out, since injected fakes rarely pickle, and an unpickled
    pipeline gets the production defaults; assign the attributes to inject others again.

    Not thread-safe: serialize calls to :meth:`process` (for instance one pipeline per worker, with
    agents sharded across workers). No I/O, never blocks.

    Args:
        loop_min_repeats: Identical consecutive calls that make a loop (WARNING); twice as many
            make it CRITICAL.
        rate_window_s: Event-time window of the action rate, in seconds.
        rate_warning_z: z-score of the open window's action count that raises a WARNING. The
            default 6 keeps false warnings near 0.2 per agent-hour on Poisson traffic at 3
            actions/s (z = 4 gave 3.4: small counts have a heavier upper tail than a normal).
        rate_critical_z: z-score that raises a CRITICAL; greater than ``rate_warning_z``.
        rate_warmup_windows: Windows an agent's rate baseline learns before it scores.
        rate_alpha: Fading factor of the rate baseline.
        rate_max_gap_windows: Most empty windows learned after a silence.
        clock: Wall clock in ns since the epoch, for ``Anomaly.detected_ns``.
        id_factory: Makes ``Anomaly.id`` (32 hex chars).

    Example:
        >>> from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind
        >>> pipeline = DetectorPipeline()
        >>> def call(ts_ns):
        ...     return AgentEvent("a1", "researcher", EventKind.ACTION, ts_ns,
        ...                       key="web_search", fingerprint="f00d")
        >>> pipeline.process(call(1)), pipeline.process(call(2))
        ([], [])
        >>> [anomaly] = pipeline.process(call(3))
        >>> anomaly.detector, anomaly.severity, anomaly.score, anomaly.onset_ns
        ('loop', <Severity.WARNING: 'warning'>, 3.0, 1)
    """

    def __init__(
        self,
        *,
        loop_min_repeats: int = 3,
        rate_window_s: float = 1.0,
        rate_warning_z: float = 6.0,
        rate_critical_z: float = 8.0,
        rate_warmup_windows: int = 10,
        rate_alpha: float = 0.1,
        rate_max_gap_windows: int = 60,
        clock: Callable[[], int] = time.time_ns,
        id_factory: Callable[[], str] = _new_id,
    ) -> None:
        if not rate_warning_z > 0:
            raise ValueError(f"rate_warning_z must be > 0, got {rate_warning_z}")
        if not rate_critical_z > rate_warning_z:
            raise ValueError(
                f"rate_critical_z must be > rate_warning_z ({rate_warning_z}), "
                f"got {rate_critical_z}"
            )
        self.loop_min_repeats = loop_min_repeats
        self.rate_window_s = rate_window_s
        self.rate_warning_z = rate_warning_z
        self.rate_critical_z = rate_critical_z
        self.rate_warmup_windows = rate_warmup_windows
        self.rate_alpha = rate_alpha
        self.rate_max_gap_windows = rate_max_gap_windows
        self.clock = clock
        self.id_factory = id_factory
        self._window_ns = round(rate_window_s * _NS_PER_S)
        self._agents: dict[str, _AgentState] = {}
        # cohort (service) -> an agent of it with a warm rate baseline, for new agents to start from
        self._exemplars: dict[str, str] = {}
        self._new_state()  # validates the detectors' arguments now rather than at the first event

    def process(self, event: AgentEvent) -> list[Anomaly]:
        """Scores, then learns, one event; returns the anomalies it raises (usually none).

        Args:
            event: A normalized event; any kind, any agent.

        Returns:
            New anomalies, WARNING before CRITICAL, loop before action rate.
        """
        if event.kind is not EventKind.ACTION:
            return []
        state = self._agents.get(event.agent)
        if state is None:
            state = self._agents[event.agent] = self._new_state()
            exemplar = self._agents.get(self._exemplars.get(event.service, ""))
            if exemplar is not None:
                state.rate.start_from(exemplar.rate)
        anomalies: list[Anomaly] = []
        if event.fingerprint:
            self._process_loop(state, event, anomalies)
        self._process_rate(state, event, anomalies)
        return anomalies

    def agents(self) -> list[str]:
        """Returns the ids of the tracked agents, in order of first action."""
        return list(self._agents)

    def forget(self, agent: str) -> bool:
        """Drops one agent's state; returns whether it was tracked."""
        return self._agents.pop(agent, None) is not None

    def __len__(self) -> int:
        return len(self._agents)

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
        state = {"config": self._config(), "agents": dict(wanted)}
        return _SNAPSHOT_MAGIC + struct.pack("<H", _SNAPSHOT_VERSION) + pickle.dumps(state)

    def restore(self, blob: bytes, *, merge: bool = True) -> int:
        """Load a :meth:`snapshot`; returns how many agents it held.

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
        if version != _SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot version {version} is not supported (want {_SNAPSHOT_VERSION})"
            )
        state = pickle.loads(blob[header:])
        if state["config"] != self._config():
            raise ValueError(
                f"snapshot was taken with detector settings {state['config']}, "
                f"this pipeline has {self._config()}"
            )
        if not merge:
            self._agents.clear()
        self._agents.update(state["agents"])
        return len(state["agents"])

    def _config(self) -> dict[str, Any]:
        return {
            "loop_min_repeats": self.loop_min_repeats,
            "rate_window_s": self.rate_window_s,
            "rate_warmup_windows": self.rate_warmup_windows,
            "rate_alpha": self.rate_alpha,
            "rate_max_gap_windows": self.rate_max_gap_windows,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["clock"], state["id_factory"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.clock = time.time_ns
        self.id_factory = _new_id

    def _new_state(self) -> _AgentState:
        return _AgentState(
            LoopDetector(min_repeats=self.loop_min_repeats),
            ActionRateDetector(
                window_s=self.rate_window_s,
                alpha=self.rate_alpha,
                warmup_windows=self.rate_warmup_windows,
                max_gap_windows=self.rate_max_gap_windows,
            ),
        )

    def _process_loop(self, state: _AgentState, event: AgentEvent, out: list[Anomaly]) -> None:
        repeats = state.loop.observe(event.fingerprint)
        if repeats == 1.0:
            state.loop_onset_ns = event.ts_ns
            state.loop_level = 0
        threshold = float(self.loop_min_repeats)
        level = _level(repeats, threshold, 2 * threshold)
        if level <= state.loop_level:
            return
        state.loop_level = level
        n = int(repeats)
        tool = event.key or "a tool"
        out.append(
            self._anomaly(
                event,
                _LOOP,
                score=repeats,
                threshold=threshold if level == Severity.WARNING.rank else 2 * threshold,
                level=level,
                onset_ns=state.loop_onset_ns,
                evidence={
                    "summary": (
                        f"agent {event.agent} called {tool} with identical arguments "
                        f"{n} times in a row"
                    ),
                    "fingerprint": event.fingerprint,
                    "tool": event.key,
                    "repeats": n,
                    "expected": "no identical consecutive calls",
                },
            )
        )

    def _process_rate(self, state: _AgentState, event: AgentEvent, out: list[Anomaly]) -> None:
        rate = state.rate
        previous = rate.window
        window, z, count, mean, std = rate.observe(event.ts_ns / _NS_PER_S)
        # When the open window closes, its last score was its highest; an empty window in between
        # scored 0. Either below the warning threshold ends the excursion.
        if (
            previous is not None
            and window != previous
            and (state.rate_last_z < self.rate_warning_z or window > previous + 1)
        ):
            state.rate_level = 0
        state.rate_last_z = z
        if window != previous and rate.warm:
            self._exemplars[event.service] = event.agent
        level = _level(z, self.rate_warning_z, self.rate_critical_z)
        if level <= state.rate_level:
            return
        state.rate_level = level
        out.append(
            self._anomaly(
                event,
                _ACTION_RATE,
                score=z,
                threshold=(
                    self.rate_warning_z if level == Severity.WARNING.rank else self.rate_critical_z
                ),
                level=level,
                # Float event time can put the window edge a few hundred ns past the event.
                onset_ns=min(window * self._window_ns, event.ts_ns),
                evidence={
                    "summary": (
                        f"agent {event.agent}: {count} actions in the current "
                        f"{self.rate_window_s:g} s window, baseline {mean:.1f} ± {std:.1f}"
                    ),
                    "observed": count,
                    "expected_mean": mean,
                    "expected_std": std,
                    "window_s": self.rate_window_s,
                },
            )
        )

    def _anomaly(
        self,
        event: AgentEvent,
        detector: str,
        *,
        score: float,
        threshold: float,
        level: int,
        onset_ns: int,
        evidence: dict[str, Any],
    ) -> Anomaly:
        return Anomaly(
            id=self.id_factory(),
            agent=event.agent,
            service=event.service,
            detector=detector,
            score=score,
            threshold=threshold,
            severity=_SEVERITY_BY_RANK[level],
            onset_ns=onset_ns,
            detected_ns=self.clock(),
            evidence=evidence,
            trace_id=event.trace_id,
            span_id=event.span_id,
        )
