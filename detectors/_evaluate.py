"""Scoring the pipeline on a simulated fleet with labelled faults (``backtest scenarios``).

How an anomaly matches a fault: same agent, and detected (event time) within the fault's window
widened by a grace period, ``[start, end + grace_s]``. Which detectors count for which fault type
is :data:`ACCEPTS`; each detector also has one fault type it is *for* (:data:`PRIMARY`), which is
where its precision is reported.

* recall of a type: its faults matched by at least one anomaly of an accepted detector;
* precision of a type: among anomalies of the detectors it is primary for, those matching a fault
  that accepts them (TP) against those matching no fault on that agent at all (FP). An anomaly
  that matches only a fault of another type (a loop's flood also spiking the rate) is counted
  apart, as ``cross``: the agent was misbehaving, but not as this detector claims;
* detection delay: from the fault's onset to its first matching anomaly, in seconds and in the
  agent's actions (the detecting action included: a loop caught at its 3rd call has delay 3).

Liveness has no event to run on: missed heartbeats are evaluated for every agent on a simulated
1 s maintenance tick, with the service's rule (``_liveness``), skipping agents whose last
heartbeat said ``stopped``. Pure: no I/O; not thread-safe.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from agentwatch.detectors._liveness import missed_heartbeat
from agentwatch.detectors._pipeline import DetectorPipeline
from agentwatch.detectors._scenarios import FAULT_TYPES, STATUS_STOPPED, Fault, Scenario
from agentwatch.detectors._types import Anomaly, EventKind, Severity

__all__ = ["ACCEPTS", "PRIMARY", "Evaluation", "TypeScore", "evaluate"]

ACCEPTS: dict[str, frozenset[str]] = {
    "tool_loop": frozenset({"loop"}),
    "cycle": frozenset({"cycle"}),
    "rate_spike": frozenset({"action_rate"}),
    "rate_drop": frozenset({"action_drop", "action_stall"}),
    "stall": frozenset({"action_stall", "action_drop"}),
    "decision_drift": frozenset({"decision_drift"}),
    "heartbeat_loss": frozenset({"liveness"}),
    "error_burst": frozenset({"error_rate"}),
    "slow_decisions": frozenset({"decision_latency"}),
    "goal_stall": frozenset({"goal_stall"}),
    "message_flood": frozenset({"message_volume"}),
}
PRIMARY: dict[str, str] = {
    "loop": "tool_loop",
    "cycle": "cycle",
    "action_rate": "rate_spike",
    "action_drop": "rate_drop",
    "action_stall": "stall",
    "decision_drift": "decision_drift",
    "liveness": "heartbeat_loss",
    "error_rate": "error_burst",
    "decision_latency": "slow_decisions",
    "goal_stall": "goal_stall",
    "message_volume": "message_flood",
}
_NS = 1_000_000_000


@dataclass(slots=True)
class TypeScore:
    """One fault type's figures.

    Attributes:
        kind: The fault type.
        faults: Faults injected.
        detected: Faults matched by an accepted detector.
        tp: Anomalies of its detectors that match a fault accepting them.
        fp: Anomalies of its detectors matching no fault on their agent.
        cross: Anomalies of its detectors matching only faults of other types.
        critical_fp: The CRITICAL ones among ``fp`` (they would open a breaker).
        delays_s: Detection delay of each detected fault, in seconds.
        delays_actions: The same in the agent's actions.
    """

    kind: str
    faults: int = 0
    detected: int = 0
    tp: int = 0
    fp: int = 0
    cross: int = 0
    critical_fp: int = 0
    delays_s: list[float] = field(default_factory=list)
    delays_actions: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.faults if self.faults else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Evaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        scores: Per fault type, in :data:`FAULT_TYPES` order.
        anomalies: Every anomaly raised, in detection order.
        matched: Per fault (by index in ``Scenario.faults``): its first matching anomaly or None.
        events: Events processed.
        fleet_hours: Agent-hours simulated divided by the fleet size: the run's length in hours.
        agents: Fleet size.
        false_by_detector: Unmatched anomalies per detector (any severity).
        critical_false: Unmatched CRITICAL anomalies (breaker-opening false alarms).
    """

    scores: dict[str, TypeScore]
    anomalies: list[Anomaly]
    matched: list[Anomaly | None]
    events: int
    fleet_hours: float
    agents: int
    false_by_detector: dict[str, int]
    critical_false: int


def evaluate(
    scenario: Scenario,
    pipeline: DetectorPipeline | None = None,
    *,
    grace_s: float = 30.0,
    heartbeat_misses: float = 3.0,
    progress: Callable[[float], None] | None = None,
) -> Evaluation:
    """Streams the scenario through ``pipeline`` (default settings when None) and scores it.

    Args:
        scenario: The fleet and its labelled faults.
        pipeline: The detectors; its clock is replaced by the simulated event time.
        grace_s: How long after a fault's end an anomaly still matches it.
        heartbeat_misses: Intervals of silence that make an agent lost (the service's setting).
        progress: Called now and then with the share of simulated time done, in [0, 1].
    """
    pipeline = pipeline if pipeline is not None else DetectorPipeline()
    now = [scenario.start_ns]
    pipeline.clock = lambda: now[0]
    faults = scenario.faults
    actions: dict[str, int] = {}
    at_onset: list[int] = [0] * len(faults)
    next_fault = 0
    beats: dict[str, tuple[int, float, str, str]] = {}  # agent -> (last ns, interval, status, svc)
    lost: set[str] = set()
    next_tick = scenario.start_ns + _NS
    anomalies: list[Anomaly] = []
    actions_at: list[int] = []  # per anomaly: its agent's actions when it was raised
    span = max(scenario.end_ns - scenario.start_ns, 1)
    n = 0
    for event in scenario.events():
        ts = event.ts_ns
        while next_tick <= ts:
            now[0] = next_tick
            for agent, (last, interval, status, service) in beats.items():
                if status == STATUS_STOPPED or agent in lost:
                    continue
                anomaly = missed_heartbeat(
                    agent,
                    service,
                    last_heartbeat_ns=last,
                    interval_s=interval,
                    now_ns=next_tick,
                    misses=heartbeat_misses,
                    id_factory=pipeline.id_factory,
                )
                if anomaly is not None:
                    lost.add(agent)
                    anomalies.append(anomaly)
                    actions_at.append(actions.get(agent, 0))
            next_tick += _NS
        while next_fault < len(faults) and faults[next_fault].start_ns <= ts:
            at_onset[next_fault] = actions.get(faults[next_fault].agent, 0)
            next_fault += 1
        n += 1
        if event.kind is EventKind.ACTION:
            actions[event.agent] = actions.get(event.agent, 0) + 1
        elif event.kind is EventKind.HEARTBEAT:
            beats[event.agent] = (ts, event.value, event.key, event.service)
            lost.discard(event.agent)
        now[0] = ts
        for anomaly in pipeline.process(event):
            anomalies.append(anomaly)
            actions_at.append(actions.get(event.agent, 0))
        if progress is not None and n % 200_000 == 0:
            progress((ts - scenario.start_ns) / span)
    while next_fault < len(faults):  # faults starting after the last event (a silent end)
        at_onset[next_fault] = actions.get(faults[next_fault].agent, 0)
        next_fault += 1
    if progress is not None:
        progress(1.0)
    return _score(scenario, anomalies, actions_at, at_onset, grace_s, n)


def _score(
    scenario: Scenario,
    anomalies: list[Anomaly],
    actions_at: list[int],
    at_onset: list[int],
    grace_s: float,
    events: int,
) -> Evaluation:
    grace_ns = round(grace_s * _NS)
    scores = {kind: TypeScore(kind) for kind in FAULT_TYPES}
    by_agent: dict[str, list[int]] = {}
    for i, fault in enumerate(scenario.faults):
        by_agent.setdefault(fault.agent, []).append(i)
        scores[fault.kind].faults += 1
    matched: list[Anomaly | None] = [None] * len(scenario.faults)
    false_by_detector: dict[str, int] = {}
    critical_false = 0
    for anomaly, actions in zip(anomalies, actions_at, strict=True):
        hits = [
            i
            for i in by_agent.get(anomaly.agent, ())
            if _within(scenario.faults[i], anomaly.detected_ns, grace_ns)
        ]
        accepted = [i for i in hits if anomaly.detector in ACCEPTS[scenario.faults[i].kind]]
        for i in accepted:
            if matched[i] is None:
                matched[i] = anomaly
                fault = scenario.faults[i]
                score = scores[fault.kind]
                score.detected += 1
                score.delays_s.append((anomaly.detected_ns - fault.start_ns) / _NS)
                score.delays_actions.append(actions - at_onset[i])
        kind = PRIMARY.get(anomaly.detector)
        own = scores[kind] if kind is not None else None
        if accepted:
            if own is not None:
                own.tp += 1
        elif hits:
            if own is not None:
                own.cross += 1
        else:
            false_by_detector[anomaly.detector] = false_by_detector.get(anomaly.detector, 0) + 1
            critical = anomaly.severity is Severity.CRITICAL
            critical_false += critical
            if own is not None:
                own.fp += 1
                own.critical_fp += critical
    return Evaluation(
        scores=scores,
        anomalies=anomalies,
        matched=matched,
        events=events,
        fleet_hours=scenario.duration_s / 3600,
        agents=len(scenario.profiles),
        false_by_detector=false_by_detector,
        critical_false=critical_false,
    )


def _within(fault: Fault, detected_ns: int, grace_ns: int) -> bool:
    return fault.start_ns <= detected_ns <= fault.end_ns + grace_ns


def percentile(values: list[float] | list[int], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolated; NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1])
