"""The per-agent pipeline: events in, thresholded anomalies with evidence out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from agentwatch.detectors._drift import KeyDriftDetector
from agentwatch.detectors._drop import ActivityDropDetector
from agentwatch.detectors._families import _NS_PER_S, _NS_PER_S_FLOAT, _AgentState
from agentwatch.detectors._health import ErrorBurstDetector, GoalStallDetector, LatencyDetector
from agentwatch.detectors._loop import _MAX_FINGERPRINT_CHARS, CycleDetector, LoopDetector, _key
from agentwatch.detectors._messages import MessageVolumeDetector
from agentwatch.detectors._rate import ActionRateDetector
from agentwatch.detectors._session_pattern import CohortSessions
from agentwatch.detectors._snapshots import PipelineSnapshots, _new_id
from agentwatch.detectors._types import AgentEvent, Anomaly, EventKind

__all__ = ["DetectorPipeline"]

# _AgentState lived in this module until snapshot version 2: version 1 pickles name it here, and
# the import above keeps that name resolvable. _SNAPSHOT_VERSION is re-exported for the tests.

# The kinds, as constants: compiled (setup.py), a Final is a C static, a class attribute a lookup.
_ACTION: Final = EventKind.ACTION
_HEARTBEAT: Final = EventKind.HEARTBEAT
_DECISION: Final = EventKind.DECISION
_GOAL: Final = EventKind.GOAL
_MESSAGE: Final = EventKind.MESSAGE
_SESSION: Final = EventKind.SESSION


class DetectorPipeline(PipelineSnapshots):
    """Keys events by agent, runs the per-agent detectors, thresholds with hysteresis.

    Each agent (``AgentEvent.agent``) gets, lazily, one detector of each family (DESIGN.md,
    Detectors). Each event is scored, then learned (river's order) by the detectors that read
    its kind; other kinds (state, checkpoint, model, other) are ignored:

    ==========  =====================================================================
    event       detectors (anomaly ``detector`` names)
    ==========  =====================================================================
    action      :class:`LoopDetector` (``loop``) and :class:`CycleDetector` (``cycle``) when
                it has a fingerprint; :class:`ActionRateDetector` (``action_rate``);
                :class:`KeyDriftDetector` (``decision_drift``) on its tool (but for a
                loop's repeats);
                :class:`ErrorBurstDetector` (``error_rate``); counted by the drop and goal
                detectors
    heartbeat   :class:`ActivityDropDetector` (``action_drop``, ``action_stall``)
    decision    :class:`LatencyDetector` on its duration (``decision_latency``)
    goal        :class:`GoalStallDetector` (``goal_stall``, raised on the actions after it)
    message     :class:`MessageVolumeDetector` (``message_volume``) on its peer and bytes,
                created at the agent's first message (an agent that sends none pays nothing)
    session     with ``session_patterns``: its calls, kept from the agent's first session
                on, judged against the cohort's :class:`TransitionModel` once it has
                ended (``session_pattern``; ``_session_pattern``)
    ==========  =====================================================================

    Thresholds and hysteresis (WARNING alerts people; CRITICAL is what opens a breaker by
    default, so only families where stopping the agent helps have one):

    * ``loop``: WARNING when a run of identical calls reaches ``loop_min_repeats``, CRITICAL once
      when the same run reaches twice that; nothing more for that run. A new run re-arms. The onset
      is the first call of the run.
    * ``cycle``: the same for a short cycle (A-B-A-B...) played ``loop_min_repeats`` times, and
      twice that; onset at the cycle's first call.
    * ``action_rate``: WARNING when the open window's score (:class:`ActionRateDetector`'s: the
      count's, or the pace's, surprise on a z-score's scale) reaches ``rate_warning_z``, CRITICAL
      once when it reaches ``rate_critical_z``; at most one of each per excursion. The excursion
      ends, and the pipeline re-arms, when a window closes scoring below ``rate_warning_z`` or
      more than three windows pass without an action. The onset is the start of the window.
    * ``action_drop`` / ``action_stall`` (WARNING only): a heartbeat finds the recent running
      periods' actions ``drop_warning_nats`` below the agent's usual rate, and at most half of
      it (``action_stall`` when none at all); once per excursion, re-armed by a heartbeat
      scoring below it. Onset: the start of the look-back.
    * ``decision_drift``: one tool's recent share is ``drift_warning_nats`` (WARNING) or
      ``drift_critical_nats`` (CRITICAL) above its baseline share; re-armed when that tool's recent
      share falls back below the scoring minimum.
    * ``error_rate``: the failures among the last calls are ``error_warning_nats`` (WARNING) or
      ``error_critical_nats`` (CRITICAL) improbable under the agent's error rate; re-armed when a
      failure scores below the warning threshold.
    * ``decision_latency`` (WARNING only): ``latency_min_run`` slow decisions in a row; re-armed
      by a decision that is not slow.
    * ``goal_stall`` (WARNING only): the agent acted ``GoalStallDetector.limit`` times without its
      goal progressing; re-armed by progress or a new goal. Onset: the last progress.
    * ``message_volume`` (WARNING only: a chatty loop wastes, it rarely destroys): the open
      ``message_window_s`` window's messages (its count, alone or summed with the one or two
      windows before, or its bytes) score ``message_warning_z`` above the agent's usual; at most
      one per excursion, which ends as the action rate's does (a window closing below the
      warning, or more than three windows without a message). Onset: the first of the windows
      just before it that were held out of the baseline as outliers (where the flood began),
      else the open window's start. The evidence names the window's top peer.
    * ``session_pattern`` (WARNING only; with ``session_patterns``): a session makes a step its
      cohort never made (a call or a transition never seen, a run longer than any), once the
      cohort has learned ``session_min_sessions`` sessions; one per session, onset at its start.
      Normal sessions are learned; a novelty seen in 20 of a cohort's sessions becomes normal.

    A new agent starts from the rate baseline and tool mix of its cohort's (``service.name``)
    agent whose warm rate baseline most recently closed a window (drift scored after its first
    ``window`` calls); error rates and latencies differ per agent and wait for its own warm-up.
    Missed heartbeats and agent counts are judged by a timer, outside the pipeline
    (``_liveness``, ``_census``). Message events are messages sent. Not yet: eviction of idle
    agents other than :meth:`forget`.

    The pipeline pickles (a snapshot keeps every baseline and hysteresis state) but for ``clock``
    and ``id_factory`` (injected fakes rarely pickle): an unpickled pipeline gets the defaults.
    Not thread-safe: serialize calls to :meth:`process` (one pipeline per worker, agents sharded
    across workers). No I/O, never blocks.

    Args:
        loop_min_repeats: Identical consecutive calls that make a loop (WARNING), and plays of a
            short cycle; twice as many make it CRITICAL.
        rate_window_s: Event-time window of the action rate, in seconds.
        rate_warning_z: Score of the open window's actions (count or pace) that raises a
            WARNING. Chosen on the scenario backtest's seeds 0-3 (193 5x spikes; normal fleets
            1-4) and checked on seeds 4-7 (194; normal 5-8): the default 5.5 flagged 187 and
            191 within 2 s with no false warning in either 4 normal fleet-hours of 200 agents
            (their highest score was 5.2); 6 flagged 185 and 188, 5 flagged 187 and 193 with
            one false warning.
        rate_critical_z: Score that raises a CRITICAL; greater than ``rate_warning_z``.
        rate_warmup_windows: Windows an agent's rate baseline learns before it scores.
        rate_alpha: Fading factor of the rate baseline.
        rate_max_gap_windows: Most empty windows learned after a silence.
        drop_warning_nats: Surprise of too few actions, over recent heartbeat periods, that
            raises ``action_drop`` / ``action_stall``.
        drift_warning_nats: Surprise of a tool's recent share that raises a WARNING.
        drift_critical_nats: ... a CRITICAL; greater than ``drift_warning_nats``.
        error_warning_nats: Surprise of the recent failures that raises a WARNING.
        error_critical_nats: ... a CRITICAL; greater than ``error_warning_nats``.
        latency_min_run: Slow decisions in a row that raise a WARNING.
        goal_stall_actions: Least actions without goal progress that raise a WARNING.
        message_window_s: Event-time window of the message volume, in seconds.
        message_warning_z: z-score of the open window's messages (or bytes) that raises a
            WARNING. Normal simulated fleets peak near 5 (the scenario backtest).
        session_patterns: Judge sessions against their cohort's (``session_pattern``); off by
            default: a simulated normal fleet of 200 agents gets about 66 warnings an hour.
        session_min_sessions: Sessions a cohort's model learns before it judges any.
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
        rate_warning_z: float = 5.5,
        rate_critical_z: float = 8.0,
        rate_warmup_windows: int = 10,
        rate_alpha: float = 0.1,
        rate_max_gap_windows: int = 60,
        drop_warning_nats: float = 12.0,
        drift_warning_nats: float = 10.0,
        drift_critical_nats: float = 20.0,
        error_warning_nats: float = 14.0,
        error_critical_nats: float = 24.0,
        latency_min_run: int = 4,
        goal_stall_actions: int = 12,
        message_window_s: float = 10.0,
        message_warning_z: float = 8.0,
        session_patterns: bool = False,
        session_min_sessions: int = 5000,
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
        for name, warning, critical in (
            ("drift", drift_warning_nats, drift_critical_nats),
            ("error", error_warning_nats, error_critical_nats),
        ):
            if not warning > 0:
                raise ValueError(f"{name}_warning_nats must be > 0, got {warning}")
            if not critical > warning:
                raise ValueError(
                    f"{name}_critical_nats must be > {name}_warning_nats ({warning}), "
                    f"got {critical}"
                )
        if not drop_warning_nats > 0:
            raise ValueError(f"drop_warning_nats must be > 0, got {drop_warning_nats}")
        if latency_min_run < 1:
            raise ValueError(f"latency_min_run must be >= 1, got {latency_min_run}")
        if not message_warning_z > 0:
            raise ValueError(f"message_warning_z must be > 0, got {message_warning_z}")
        MessageVolumeDetector(window_s=message_window_s)  # validates it now, not at a message
        self.loop_min_repeats = loop_min_repeats
        self.rate_window_s = rate_window_s
        self.rate_warning_z = rate_warning_z
        self.rate_critical_z = rate_critical_z
        self.rate_warmup_windows = rate_warmup_windows
        self.rate_alpha = rate_alpha
        self.rate_max_gap_windows = rate_max_gap_windows
        self.drop_warning_nats = drop_warning_nats
        self.drift_warning_nats = drift_warning_nats
        self.drift_critical_nats = drift_critical_nats
        self.error_warning_nats = error_warning_nats
        self.error_critical_nats = error_critical_nats
        self.latency_min_run = latency_min_run
        self.goal_stall_actions = goal_stall_actions
        self.message_window_s = message_window_s
        self.message_warning_z = message_warning_z
        self.session_patterns = session_patterns
        self.session_min_sessions = session_min_sessions
        self._sessions = CohortSessions(min_sessions=session_min_sessions)
        self.clock = clock
        self.id_factory = id_factory
        self._window_ns = round(rate_window_s * _NS_PER_S)
        self._agents: dict[str, _AgentState] = {}
        # cohort (service) -> an agent of it with a warm rate baseline, for new agents to start from
        self._exemplars: dict[str, str] = {}
        self._mix_exemplars: dict[str, str] = {}  # cohort -> an agent of it with a warm tool mix
        self._new_state()  # validates the detectors' arguments now rather than at the first event

    def process(self, event: AgentEvent) -> list[Anomaly]:
        """Scores, then learns, one event; returns the anomalies it raises (usually none).

        Args:
            event: A normalized event; any kind, any agent.

        Returns:
            New anomalies, WARNING before CRITICAL, in the order of the table above.
        """
        kind = event.kind
        if kind is _ACTION:
            # The hot path: each family's detector state is read directly, and its handler (the
            # thresholds, hysteresis and evidence) called only when there is something to decide.
            # Each family's inlined step is its detector's ``observe`` (the reference; the unit
            # tests hold both to the same results).
            state = self._agents.get(event.agent) or self._add_agent(event)
            anomalies: list[Anomaly] = []
            ts_ns = event.ts_ns
            fingerprint = event.fingerprint
            if fingerprint:
                if len(fingerprint) > _MAX_FINGERPRINT_CHARS:
                    fingerprint = _key(fingerprint)
                loop, cycle = state.loop, state.cycle  # LoopDetector.observe
                recent = cycle._recent  # CycleDetector.observe: the same fingerprints, newest first
                if fingerprint == loop._last:
                    repeats = loop._run = loop._run + 1
                    if repeats >= self.loop_min_repeats:
                        self._process_loop(state, event, float(repeats), anomalies)
                    if cycle._period:  # a repeat (period 1) is a loop's, and ends any cycle
                        cycle._period = cycle._run = 0
                    if state.cycle_level:
                        state.cycle_level = 0
                else:
                    loop._last, loop._run = fingerprint, 1
                    state.loop_onset_ns = ts_ns
                    state.loop_level = 0
                    if fingerprint in recent:
                        period = recent.index(fingerprint) + 1
                        if period == cycle._period:
                            run = cycle._run = cycle._run + 1
                        else:
                            cycle._period, cycle._run, cycle._onset = (
                                period,
                                1,
                                cycle._times[period - 1],
                            )
                            run = 1
                        if 1.0 + run / period >= self.loop_min_repeats:
                            self._process_cycle(
                                state, event, (1.0 + run / period, period, cycle._onset), anomalies
                            )
                    else:
                        if cycle._period:
                            cycle._period = cycle._run = 0
                        if state.cycle_level:
                            state.cycle_level = 0
                recent.insert(0, fingerprint)
                times = cycle._times
                times.insert(0, ts_ns)
                if len(recent) > cycle.max_period:
                    recent.pop()
                    times.pop()
            rate = state.rate  # ActionRateDetector.observe while nothing can score, inlined
            pace = rate.pace  # with PaceDetector.step_to (its windows are the rate's)
            t = ts_ns / _NS_PER_S_FLOAT
            q = t / rate.window_s
            window = rate._window
            count = rate._count + 1
            learned = pace._gap
            gap = t - pace._last_t
            if (
                window is not None
                and window <= q < window + 1
                and count < rate._need
                # not fast (nor after a pause: the pace's latest time is then infinite), so
                # the pace's CUSUM, at 0, stays there
                and gap >= pace._e3
                and not pace._nats
                and learned
            ):
                rate._count = count
                pace._last_t = t
                if gap >= pace._e5:
                    pace._c5 += 1
                elif gap >= pace._e4:
                    pace._c4 += 1
                else:
                    pace._c3 += 1
                pace._gap = learned * (pace._down if gap < learned else pace._up)
                pace._mean_gap += pace.gap_alpha * (gap - pace._mean_gap)
                if pace._settling:
                    pace._settling -= 1
                    if not pace._settling:
                        pace._settled()
                state.rate_last_z = 0.0
            else:
                self._process_rate(state, event, anomalies)
            # One action counter per agent; the drop, error and goal detectors read it.
            n = state.actions = state.actions + 1
            key = event.key
            # A loop's repeats are the loop family's: in the tool mix they would outlast it.
            if key and not (fingerprint and loop._run > 1):
                if not n & 63:  # now and then: a cold agent takes its cohort's tool mix
                    self._share_cohort_mix(state, event)
                drift = state.drift.observe(key)
                if drift[0] >= self.drift_warning_nats or state.drift_level:
                    self._process_drift(state, event, drift, anomalies)
            if event.error:
                self._process_error(state, event, n, anomalies)
            if n >= state.goal_deadline and not state.goal_level:
                self._raise_goal_stall(state, event, n, anomalies)
            trail = state.trail  # None unless the agent reports sessions
            if trail is not None:
                trail.add(ts_ns, key)
                if trail.pending:
                    self._close_sessions(state, event, trail, anomalies)
            return anomalies
        if kind is _HEARTBEAT:
            state = self._agents.get(event.agent) or self._add_agent(event)
            anomalies = self._process_heartbeat(state, event)
            trail = state.trail
            if trail is not None and trail.pending:
                self._close_sessions(state, event, trail, anomalies)
            return anomalies
        if kind is _DECISION:
            state = self._agents.get(event.agent) or self._add_agent(event)
            return self._process_decision(state, event)
        if kind is _GOAL:
            state = self._agents.get(event.agent) or self._add_agent(event)
            self._process_goal(state, event)
        elif kind is _MESSAGE:
            state = self._agents.get(event.agent) or self._add_agent(event)
            return self._process_message(state, event)
        elif kind is _SESSION and self.session_patterns:
            state = self._agents.get(event.agent) or self._add_agent(event)
            self._process_session(state, event)
        return []

    def _add_agent(self, event: AgentEvent) -> _AgentState:
        state = self._agents[event.agent] = self._new_state()
        exemplar = self._agents.get(self._exemplars.get(event.service, ""))
        if exemplar is not None:
            state.rate.start_from(exemplar.rate)
            state.drift.start_from(exemplar.drift)
        return state

    def agents(self) -> list[str]:
        """Returns the ids of the tracked agents, in order of their first scored event."""
        return list(self._agents)

    def forget(self, agent: str) -> bool:
        """Drops one agent's state; returns whether it was tracked."""
        return self._agents.pop(agent, None) is not None

    def __len__(self) -> int:
        return len(self._agents)

    def _new_state(self) -> _AgentState:
        state = _AgentState()
        state.loop = LoopDetector(min_repeats=self.loop_min_repeats)
        state.rate = ActionRateDetector(
            window_s=self.rate_window_s,
            alpha=self.rate_alpha,
            warmup_windows=self.rate_warmup_windows,
            max_gap_windows=self.rate_max_gap_windows,
            report_z=max(1.0, self.rate_warning_z),
        )
        state.cycle = CycleDetector()
        state.drop = ActivityDropDetector()
        state.drift = KeyDriftDetector()
        state.errors = ErrorBurstDetector()
        state.latency = LatencyDetector()
        state.goal = GoalStallDetector(min_actions=self.goal_stall_actions)
        return state
