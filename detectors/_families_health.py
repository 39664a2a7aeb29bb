"""Handlers of the families that watch an agent's health rather than its action stream's shape.

:class:`HealthHandlers` turns the scores of the activity drop (``action_drop``,
``action_stall``, on heartbeats), error rate (``error_rate``), decision latency
(``decision_latency``), goal stall (``goal_stall``), message volume (``message_volume``) and
session pattern (``session_pattern``, against the cohort's sessions)
detectors into thresholded anomalies with evidence, keeping each family's hysteresis in the
agent's :class:`~agentwatch.detectors._families._AgentState`. The action-stream families (loop,
cycle, action rate, decision drift) are :class:`~agentwatch.detectors._families.FamilyHandlers`';
:class:`~agentwatch.detectors.DetectorPipeline` mixes in both and documents the rules.
"""

from __future__ import annotations

import math
from typing import Final

from agentwatch.detectors._families import (
    _NS_PER_S,
    _NS_PER_S_FLOAT,
    FamilyHandlers,
    _AgentState,
    _level,
)
from agentwatch.detectors._messages import MessageVolumeDetector, message_evidence
from agentwatch.detectors._session_pattern import CohortSessions, SessionTrail
from agentwatch.detectors._types import AgentEvent, Anomaly, Severity

__all__ = ["HealthHandlers"]

_ACTION_DROP: Final = "action_drop"
_ACTION_STALL: Final = "action_stall"
_ERROR_RATE: Final = "error_rate"
_LATENCY: Final = "decision_latency"
_GOAL_STALL: Final = "goal_stall"
_MESSAGE_VOLUME: Final = "message_volume"
_SESSION_PATTERN: Final = "session_pattern"
_RUNNING: Final = "running"  # agentwatch.agent.status of an agent at work


class HealthHandlers(FamilyHandlers):
    """:class:`DetectorPipeline`'s handlers for heartbeats, errors, decisions, goals, messages.

    A mix-in: the pipeline holds the settings and the agents; see its docstring for the rules.
    Not thread-safe (the pipeline's calls are serialized); no I/O, never blocks.
    """

    rate_window_s: float
    _sessions: CohortSessions
    drop_warning_nats: float
    error_warning_nats: float
    error_critical_nats: float
    latency_min_run: int
    message_window_s: float
    message_warning_z: float

    def _process_heartbeat(self, state: _AgentState, event: AgentEvent) -> list[Anomaly]:
        """A heartbeat: an idle status pauses the rate; recent running periods' actions score."""
        if event.key and event.key != _RUNNING:
            state.rate.pause()  # an idle agent's silence is not a rate to learn
        rate, fallback = state.rate, None
        if rate.warm:
            mean = rate.mean
            # Windows of 1 s understate the burstiness over heartbeat periods of seconds (think
            # time, sessions): the borrowed dispersion is at least 2.
            dispersion = rate.std**2 / mean if mean > 0 else 1.0
            fallback = (mean / self.rate_window_s, max(2.0, dispersion))
        score, seen, expected, span = state.drop.beat(
            event.ts_ns / _NS_PER_S_FLOAT, event.key, fallback, state.actions
        )
        if score < self.drop_warning_nats:
            if state.drop_level:
                # The drop ended: its periods, still in the look-back, are not a new one.
                state.drop.clear_recent()
                state.drop_level = 0
            return []
        if state.drop_level:
            return []
        state.drop_level = Severity.WARNING.rank
        stall = seen == 0
        what = "no actions" if stall else f"{seen} actions"
        out: list[Anomaly] = []
        self._raise(
            event,
            _ACTION_STALL if stall else _ACTION_DROP,
            score=score,
            level=Severity.WARNING.rank,
            warning=self.drop_warning_nats,
            critical=self.drop_warning_nats,
            onset_ns=event.ts_ns - round(span * _NS_PER_S),
            evidence={
                "summary": (
                    f"agent {event.agent}: {what} in the last {span:.0f} s while its heartbeats "
                    f"say running, usually {expected:.0f}"
                ),
                "observed": seen,
                "expected": round(expected, 1),
                "window_s": round(span, 1),
                "usual_rate_per_s": round(state.drop.rate, 3),
            },
            out=out,
        )
        return out

    def _process_error(
        self, state: _AgentState, event: AgentEvent, n: int, out: list[Anomaly]
    ) -> None:
        """A failed action, the agent's ``n``-th: the recent failures score (``error_rate``)."""
        score, failures, rate = state.errors.fail(n)
        if failures <= 1 or score < self.error_warning_nats:
            state.error_level = 0
        level = _level(score, self.error_warning_nats, self.error_critical_nats)
        if level <= state.error_level:
            return
        state.error_level = level
        window = state.errors.window
        self._raise(
            event,
            _ERROR_RATE,
            score=score,
            level=level,
            warning=self.error_warning_nats,
            critical=self.error_critical_nats,
            onset_ns=event.ts_ns,
            evidence={
                "summary": (
                    f"agent {event.agent}: {failures} of its last {window} calls failed, "
                    f"usually {rate:.1%}"
                ),
                "failures": failures,
                "window_calls": window,
                "expected_rate": round(rate, 4),
                "tool": event.key,
            },
            out=out,
        )

    def _process_decision(self, state: _AgentState, event: AgentEvent) -> list[Anomaly]:
        """A decision: its duration extends or ends a run of slow ones (``decision_latency``)."""
        run, slow_s, usual_s = state.latency.observe(event.duration_s)
        if run == 0.0:
            # Re-armed only by as many usual decisions in a row as make an alarm: one fast
            # decision amid slow ones does not end the episode.
            if state.latency_level:
                state.latency_level += 1
                if state.latency_level > self.latency_min_run:
                    state.latency_level = 0
            return []
        if state.latency_level:
            state.latency_level = 1  # still slow: the calm streak starts over
            return []
        if run < self.latency_min_run:
            return []
        state.latency_level = 1  # raised; counts usual decisions since, plus one
        out: list[Anomaly] = []
        self._raise(
            event,
            _LATENCY,
            score=run,
            level=Severity.WARNING.rank,
            warning=float(self.latency_min_run),
            critical=float(self.latency_min_run),
            onset_ns=event.ts_ns,
            evidence={
                "summary": (
                    f"agent {event.agent}: {int(run)} slow decisions in a row, about "
                    f"{slow_s:.2f} s each, usually {usual_s:.2f} s"
                ),
                "slow_decisions": int(run),
                "observed_s": round(slow_s, 3),
                "expected_s": round(usual_s, 3),
            },
            out=out,
        )
        return out

    def _process_goal(self, state: _AgentState, event: AgentEvent) -> None:
        """A goal event: a new goal or progress re-arms ``goal_stall`` and moves its deadline."""
        goal = state.goal
        before = (goal.goal, goal.progress)
        goal.progress_to(event.key, event.value, event.ts_ns, state.actions)
        if (goal.goal, goal.progress) != before:
            state.goal_level = 0
        state.goal_deadline = goal.deadline(state.actions) if goal.armed else math.inf

    def _raise_goal_stall(
        self, state: _AgentState, event: AgentEvent, n: int, out: list[Anomaly]
    ) -> None:
        """The ``n``-th action reached the goal's deadline without progress: ``goal_stall``."""
        goal = state.goal
        goal.catch_up(n)
        state.goal_level = Severity.WARNING.rank
        limit = goal.limit
        self._raise(
            event,
            _GOAL_STALL,
            score=goal.actions / limit,
            level=Severity.WARNING.rank,
            warning=1.0,
            critical=1.0,
            onset_ns=goal.since_ns or event.ts_ns,
            evidence={
                "summary": (
                    f"agent {event.agent}: {goal.actions} actions without progress on goal "
                    f"{goal.goal} (stuck at {goal.progress:.0%})"
                ),
                "goal": goal.goal,
                "progress": goal.progress,
                "actions_without_progress": goal.actions,
                "expected": f"progress within {limit:.0f} actions",
            },
            out=out,
        )

    def _process_message(self, state: _AgentState, event: AgentEvent) -> list[Anomaly]:
        """A message: its window's count and bytes score; the detector is made at the first."""
        messages = state.messages
        if messages is None:
            messages = state.messages = MessageVolumeDetector(window_s=self.message_window_s)
        previous = messages.window
        window, z = messages.observe(event.ts_ns / _NS_PER_S_FLOAT, event.value, event.key)
        # As the action rate's: a window closing below the warning ends the excursion, and so
        # does a silence of more than three windows.
        if (
            window != previous
            and previous is not None
            and (state.message_last_z < self.message_warning_z or window > previous + 3)
        ):
            state.message_level = 0
        state.message_last_z = z
        if z < self.message_warning_z or state.message_level:
            return []
        state.message_level = Severity.WARNING.rank
        onset = messages.onset_window
        onset_ns = round((window if onset is None else onset) * self.message_window_s * _NS_PER_S)
        out: list[Anomaly] = []
        self._raise(
            event,
            _MESSAGE_VOLUME,
            score=z,
            level=Severity.WARNING.rank,
            warning=self.message_warning_z,
            critical=self.message_warning_z,
            # Float event time can put the window edge a few hundred ns past the event.
            onset_ns=min(onset_ns, event.ts_ns),
            evidence=message_evidence(messages, event.agent),
            out=out,
        )
        return out

    def _process_session(self, state: _AgentState, event: AgentEvent) -> None:
        """A session (its span's start and duration): judged once the agent's clock passes its
        end, when its calls are in whatever order the spans arrived (``_session_pattern``)."""
        trail = state.trail
        if trail is None:
            trail = state.trail = SessionTrail()
        end_ns = event.ts_ns + round(event.duration_s * _NS_PER_S)
        trail.session(event.ts_ns, end_ns, event.key)

    def _close_sessions(
        self, state: _AgentState, event: AgentEvent, trail: SessionTrail, out: list[Anomaly]
    ) -> None:
        """Judges the agent's sessions that ended before ``event`` against its cohort's."""
        for session_id, start_ns, _, keys in trail.due(event.ts_ns):
            verdict = self._sessions.judge(event.service, keys)
            if verdict is None:
                continue
            step = f"call {verdict.position + 1} ({verdict.key})" if verdict.key else "its end"
            self._raise(
                event,
                _SESSION_PATTERN,
                score=verdict.score,
                level=Severity.WARNING.rank,
                warning=verdict.threshold,
                critical=verdict.threshold,
                onset_ns=start_ns,
                evidence={
                    "summary": (
                        f"agent {event.agent}: session {session_id or '(no id)'} "
                        f"({verdict.calls} calls) has a step cohort {event.service} never "
                        f"made: {step}"
                    ),
                    "session": session_id,
                    "step": verdict.position + 1,
                    "key": verdict.key,
                    "calls": verdict.calls,
                    "expected": f"the steps cohort {event.service}'s sessions make",
                },
                out=out,
            )
