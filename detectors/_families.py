"""The pipeline's per-agent state, and the action-stream families' scores to anomalies.

:class:`_AgentState` holds one agent's detectors and hysteresis; pipeline snapshots pickle it
under this module's name (version 1 snapshots under ``_pipeline``'s, which re-imports it), so it
stays here. :class:`FamilyHandlers` thresholds the loop, cycle, action rate and decision drift
families, which read action events; :class:`AnomalyRaiser`, their common base, builds the
anomaly. The families that watch an agent's health are in ``_families_health``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from agentwatch.detectors._drift import KeyDriftDetector
from agentwatch.detectors._drop import ActivityDropDetector
from agentwatch.detectors._health import ErrorBurstDetector, GoalStallDetector, LatencyDetector
from agentwatch.detectors._loop import CycleDetector, LoopDetector
from agentwatch.detectors._messages import MessageVolumeDetector
from agentwatch.detectors._rate import ActionRateDetector
from agentwatch.detectors._session_pattern import SessionTrail
from agentwatch.detectors._state import Pickled
from agentwatch.detectors._types import AgentEvent, Anomaly, Severity

__all__ = ["AnomalyRaiser", "FamilyHandlers"]

_NS_PER_S: Final = 1_000_000_000
# Event times in seconds are ``ts_ns / _NS_PER_S_FLOAT``: a float division, which gives the same
# bits interpreted and compiled (Python divides two ints exactly rounded; mypyc through doubles).
_NS_PER_S_FLOAT: Final = 1e9
_LOOP: Final = "loop"
_CYCLE: Final = "cycle"
_ACTION_RATE: Final = "action_rate"
_DRIFT: Final = "decision_drift"


def _level(score: float, warning: float, critical: float) -> int:
    """0 below ``warning``, then ``Severity.rank`` of the band ``score`` falls in."""
    if score >= critical:
        return Severity.CRITICAL.rank
    if score >= warning:
        return Severity.WARNING.rank
    return 0


_SEVERITY_BY_RANK = {s.rank: s for s in Severity}


class _AgentState(Pickled):
    """One agent's detectors and hysteresis; a few KiB at most in memory."""

    __slots__ = (
        "actions",
        "cycle",
        "cycle_level",
        "drift",
        "drift_key",
        "drift_level",
        "drop",
        "drop_level",
        "error_level",
        "errors",
        "goal",
        "goal_deadline",
        "goal_level",
        "latency",
        "latency_level",
        "loop",
        "loop_level",
        "loop_onset_ns",
        "message_last_z",
        "message_level",
        "messages",
        "rate",
        "rate_last_z",
        "rate_level",
        "trail",
    )

    # Its detectors, which the pipeline sets (``DetectorPipeline._new_state``): ``__init__`` takes
    # no arguments, since a compiled class's ``__new__`` runs it, and unpickling calls ``__new__``.
    loop: LoopDetector
    rate: ActionRateDetector
    cycle: CycleDetector
    drop: ActivityDropDetector
    drift: KeyDriftDetector
    errors: ErrorBurstDetector
    latency: LatencyDetector
    goal: GoalStallDetector

    def __init__(self) -> None:
        self.loop_onset_ns = 0  # event time of the current run's first call
        self.loop_level = 0  # highest severity rank already raised for the current run
        self.rate_last_z = 0.0  # score of the open window's latest event, i.e. its highest
        self.rate_level = 0  # highest severity rank already raised in the current excursion
        self.cycle_level = 0
        self.drop_level = 0
        self.drift_key = ""  # the key the raised drift is about
        self.drift_level = 0
        self.error_level = 0
        self.latency_level = 0
        self.goal_level = 0
        self.goal_deadline = math.inf  # the action count at which a goal without progress stalls
        self.actions = 0  # the agent's actions so far
        # Created at the agent's first message: most agents never send one, and pay nothing.
        self.messages: MessageVolumeDetector | None = None
        self.message_last_z = 0.0  # score of the open window's latest message, i.e. its highest
        self.message_level = 0  # highest severity rank already raised in the current excursion
        # Created at the agent's first session: the calls awaiting their session's verdict.
        self.trail: SessionTrail | None = None


class AnomalyRaiser:
    """The family handlers' common base: an :class:`Anomaly` from a family's decision.

    A mix-in: the pipeline supplies ``clock`` and ``id_factory``.
    """

    clock: Callable[[], int]
    id_factory: Callable[[], str]

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
        """The anomaly ``detector`` raises on ``event``: ``level``'s severity, detected now."""
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

    def _raise(
        self,
        event: AgentEvent,
        detector: str,
        *,
        score: float,
        level: int,
        warning: float,
        critical: float,
        onset_ns: int,
        evidence: dict[str, Any],
        out: list[Anomaly],
    ) -> None:
        """Appends to ``out`` the anomaly at ``level``, with the threshold of its band."""
        out.append(
            self._anomaly(
                event,
                detector,
                score=score,
                threshold=warning if level == Severity.WARNING.rank else critical,
                level=level,
                onset_ns=onset_ns,
                evidence=evidence,
            )
        )


class FamilyHandlers(AnomalyRaiser):
    """:class:`DetectorPipeline`'s action-stream handlers: score, threshold, hysteresis, evidence.

    The loop, cycle, action rate and decision drift families; the others are
    :class:`~agentwatch.detectors._families_health.HealthHandlers`'. A mix-in: the pipeline holds
    the settings and the agents; see its docstring for the rules.
    """

    loop_min_repeats: int
    rate_window_s: float
    rate_warning_z: float
    rate_critical_z: float
    drift_warning_nats: float
    drift_critical_nats: float
    _window_ns: int
    _exemplars: dict[str, str]
    _mix_exemplars: dict[str, str]
    _agents: dict[str, _AgentState]

    def _process_loop(
        self, state: _AgentState, event: AgentEvent, repeats: float, out: list[Anomaly]
    ) -> None:
        """After ``LoopDetector.observe``: the pipeline resets a new run itself (repeats 1)."""
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
        """The action rate's step: its score, then hysteresis."""
        rate = state.rate
        previous = rate._window
        window, z, count, mean, std = rate.observe(event.ts_ns / _NS_PER_S_FLOAT)
        if window != previous:
            # When the open window closes, its last score was its highest; below the warning
            # threshold it ends the excursion. So does a silence longer than the three windows
            # the scores sum over; a shorter one does not (the next window still sums in the
            # spike).
            if previous is not None and (
                state.rate_last_z < self.rate_warning_z or window > previous + 3
            ):
                state.rate_level = 0
            if rate._n_windows >= rate.warmup_windows:  # warm
                self._exemplars[event.service] = event.agent
        state.rate_last_z = z
        if z >= self.rate_warning_z:
            self._raise_rate(state, event, window, z, count, mean, std, out)

    def _raise_rate(
        self,
        state: _AgentState,
        event: AgentEvent,
        window: int,
        z: float,
        count: int,
        mean: float,
        std: float,
        out: list[Anomaly],
    ) -> None:
        """After the open window scored ``z`` at or above the warning: hysteresis, evidence."""
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
                evidence=self._rate_evidence(state, event, count, mean, std),
            )
        )

    def _rate_evidence(
        self, state: _AgentState, event: AgentEvent, count: int, mean: float, std: float
    ) -> dict[str, Any]:
        """What the action rate saw: the open window's count, and how many recent actions came
        faster than the agent's usual fastest (its pace)."""
        pace = state.rate.pace
        summary = (
            f"agent {event.agent}: {count} actions in the current "
            f"{self.rate_window_s:g} s window, baseline {mean:.1f} ± {std:.1f}"
        )
        if pace.warm and pace.fast:
            summary += (
                f"; {pace.fast} of its latest actions came within {pace.gap_s * 1000:.0f} ms of "
                f"the one before (its usual fastest {pace.quantile:.0%}): their gaps are "
                f"{pace.nats:.0f} nats likelier a flood's without deliberation than its own pace"
            )
        return {
            "summary": summary,
            "observed": count,
            "expected_mean": mean,
            "expected_std": std,
            "window_s": self.rate_window_s,
            "fast_actions": pace.fast,
            "fast_gap_s": pace.gap_s,
            "pace_nats": pace.nats,
        }

    def _process_cycle(
        self,
        state: _AgentState,
        event: AgentEvent,
        observed: tuple[float, int, int],
        out: list[Anomaly],
    ) -> None:
        """After ``CycleDetector.observe``, when a cycle goes on or one was raised."""
        repeats, period, onset = observed
        if period == 0:
            state.cycle_level = 0
            return
        threshold = float(self.loop_min_repeats)
        level = _level(repeats, threshold, 2 * threshold)
        if level <= state.cycle_level:
            return
        state.cycle_level = level
        self._raise(
            event,
            _CYCLE,
            score=repeats,
            level=level,
            warning=threshold,
            critical=2 * threshold,
            onset_ns=onset or event.ts_ns,
            evidence={
                "summary": (
                    f"agent {event.agent} repeated a cycle of {period} identical calls "
                    f"{repeats:g} times in a row"
                ),
                "period": period,
                "repeats": repeats,
                "last_tool": event.key,
                "expected": "no short cycle of identical calls",
            },
            out=out,
        )

    def _share_cohort_mix(self, state: _AgentState, event: AgentEvent) -> None:
        """Every 64th action: an agent with a warm tool mix becomes its cohort's example; a
        cold one (a bursty agent needs minutes for its first 200 calls) adopts the example's
        baseline shares and is judged against them from then on."""
        drift = state.drift
        if drift._n > drift.warmup:
            self._mix_exemplars[event.service] = event.agent
            return
        exemplar = self._agents.get(self._mix_exemplars.get(event.service, ""))
        if exemplar is not None:
            drift.start_from(exemplar.drift)

    def _process_drift(
        self,
        state: _AgentState,
        event: AgentEvent,
        observed: tuple[float, float, float],
        out: list[Anomaly],
    ) -> None:
        """After ``KeyDriftDetector.observe``, when it scored high or a drift was raised."""
        drift = state.drift
        score, share, baseline = observed
        if state.drift_level and (
            (event.key == state.drift_key and score < self.drift_warning_nats)
            or drift.share(state.drift_key) < drift.min_share
        ):
            state.drift_level = 0
        level = _level(score, self.drift_warning_nats, self.drift_critical_nats)
        if level <= state.drift_level:
            return
        state.drift_level, state.drift_key = level, event.key
        self._raise(
            event,
            _DRIFT,
            score=score,
            level=level,
            warning=self.drift_warning_nats,
            critical=self.drift_critical_nats,
            onset_ns=event.ts_ns,
            evidence={
                "summary": (
                    f"agent {event.agent} now calls {event.key} in {share:.0%} of its recent "
                    f"actions, usually {baseline:.1%}"
                ),
                "tool": event.key,
                "recent_share": round(share, 3),
                "expected_share": round(baseline, 4),
            },
            out=out,
        )
