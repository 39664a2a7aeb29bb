"""Simulated fleets with labelled injected faults, in simulated time, for the scenario backtest.

Pure and seeded: no SDK, no real time, no I/O. This module plans the fleet (profiles, faults,
deploys); each agent's events (decisions, actions, goal progress, messages, heartbeats) come from
its simulator (``_agent_sim``) in event-time order, and :meth:`Scenario.events` merges the
fleet's. The cohorts' tool chains are those of the demo's fleet (``_chains``).

Normal variation, so that detectors are judged against more than a steady Poisson stream:

* steady agents (1.5-4 actions/s) and bursty ones (sessions at 3-6 actions/s, idle 10-90 s in
  between, reporting ``idle`` in their heartbeats);
* a load cycle: every agent's rate follows a sine of +-35 % whose period is the run's length (a
  day compressed into the run), with a phase per cohort;
* agents joining during the first half and leaving during the second; a leaving agent's last
  heartbeat reports status ``stopped`` (:data:`STATUS_STOPPED`, the SDK's ``semconv`` value);
* one deploy per cohort that changes the tool mix gradually over 10 minutes;
* per-agent error rates (0-4 %), decision latencies (log-normal, 2 % three times slower), a
  rarely used destructive tool (0.3 % of calls).

Faults (:data:`FAULT_TYPES`), each with its labelled window ``[start, end)``: ``tool_loop`` (one
call repeated 4-10 times at the agent's pace), ``cycle`` (a 2- or 3-call sequence repeated 3-6
times), ``rate_spike`` (5x the agent's actual rate, calls without decisions, for 20-60 s),
``rate_drop`` (to 10-20 % for 60-180 s), ``stall`` (no actions for 60-180 s while heartbeats
say ``running``), ``decision_drift`` (the destructive tool takes 60-80 % of calls for 30-120 s),
``heartbeat_loss`` (the process dies for 60-180 s, then restarts), ``error_burst`` (60-90 % of
calls fail for 30-90 s), ``slow_decisions`` (decision latency x6-10 for 60-120 s), ``goal_stall``
(actions go on, goal progress stays flat for 60-180 s), ``message_flood`` (actions go on, and the
agent messages one peer at 10-20x its usual message rate for 30-90 s: a chatty loop). No fault
starts before an agent's ``warmup_s``; faults on one agent are 5-10 minutes apart.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from agentwatch.detectors._agent_sim import (
    _NS,
    STATUS_STOPPED,
    T0_NS,
    AgentProfile,
    _AgentSim,
    _Plan,
)
from agentwatch.detectors._chains import CHAINS
from agentwatch.detectors._types import AgentEvent

__all__ = [
    "FAULT_TYPES",
    "STATUS_STOPPED",
    "AgentProfile",
    "Fault",
    "Scenario",
    "make_scenario",
]

FAULT_TYPES = (
    "tool_loop",
    "cycle",
    "rate_spike",
    "rate_drop",
    "stall",
    "decision_drift",
    "heartbeat_loss",
    "error_burst",
    "slow_decisions",
    "goal_stall",
    "message_flood",
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault, as labelled.

    Attributes:
        kind: One of :data:`FAULT_TYPES`.
        agent: The agent it was injected into.
        service: The agent's cohort.
        start_ns: Onset (event time).
        end_ns: When the faulty behaviour ended (event time).
        detail: What was injected, for people.
    """

    kind: str
    agent: str
    service: str
    start_ns: int
    end_ns: int
    detail: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """A simulated fleet: profiles, labelled faults, and its events on demand.

    Attributes:
        seed: The seed everything derives from.
        duration_s: Simulated length.
        warmup_s: No fault starts before an agent has run this long.
        profiles: The agents.
        faults: The injected faults, by onset.
    """

    seed: int
    duration_s: float
    warmup_s: float
    profiles: list[AgentProfile]
    faults: list[Fault]
    _deploys: dict[str, tuple[float, dict[str, list[int]]]]

    @property
    def start_ns(self) -> int:
        return T0_NS

    @property
    def end_ns(self) -> int:
        return T0_NS + round(self.duration_s * _NS)

    def events(self) -> Iterator[AgentEvent]:
        """The fleet's events in event-time order (regenerated identically on each call)."""
        streams = [
            _AgentSim(
                p,
                random.Random(f"{self.seed}/{p.agent}"),
                duration_s=self.duration_s,
                deploy=self._deploys[p.service],
            ).events()
            for p in self.profiles
        ]
        return heapq.merge(*streams, key=lambda e: e.ts_ns)


def make_scenario(
    seed: int = 0,
    *,
    agents: int = 200,
    hours: float = 1.0,
    fault_share: float = 0.5,
    warmup_s: float = 600.0,
) -> Scenario:
    """Plans a fleet and its faults.

    Args:
        seed: Seed of everything.
        agents: Fleet size (>= 1); cohorts round-robin.
        hours: Simulated length (> 0).
        fault_share: Share of agents that get faults, in [0, 1]; 0 makes a normal fleet.
        warmup_s: Normal behaviour each agent shows before its first fault.
    """
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents}")
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    if not 0 <= fault_share <= 1:
        raise ValueError(f"fault_share must be in [0, 1], got {fault_share}")
    rng = random.Random(seed)
    duration = hours * 3600.0
    cohorts = sorted(CHAINS)
    profiles: list[AgentProfile] = []
    for i in range(agents):
        bursty = rng.random() < 0.3
        join = rng.uniform(0.05, 0.5) * duration if rng.random() < 0.1 else 0.0
        leave = rng.uniform(0.5, 0.95) * duration if rng.random() < 0.1 else duration
        cohort = cohorts[i % len(cohorts)]
        profiles.append(
            AgentProfile(
                agent=f"{cohort}-{i:04d}",
                service=cohort,
                bursty=bursty,
                rate_per_s=rng.uniform(3.0, 6.0) if bursty else rng.uniform(1.5, 4.0),
                heartbeat_s=rng.choice((2.0, 5.0)),
                error_p=rng.uniform(0.0, 0.04),
                latency_s=rng.uniform(0.05, 0.3),
                latency_sigma=rng.uniform(0.2, 0.45),
                join_s=join,
                leave_s=leave,
            )
        )
    kinds = list(FAULT_TYPES)
    k = rng.randrange(len(kinds))
    for p in rng.sample(profiles, round(fault_share * agents)):
        t = p.join_s + warmup_s + rng.uniform(0, 300)
        while True:
            plan = _plan(kinds[k % len(kinds)], t, rng, p)
            if plan.end_s + 60 > p.leave_s:
                break
            p.plans.append(plan)
            k += 1
            t = plan.end_s + rng.uniform(300, 600)
    deploys = {}
    for cohort in cohorts:
        new = {
            tool: [round(w * rng.choice((0.5, 1, 2)) * 2) or 1 for _, w in nexts]
            for tool, nexts in CHAINS[cohort].items()
        }
        deploys[cohort] = (rng.uniform(0.3, 0.7) * duration, new)
    faults = sorted(
        (
            Fault(
                plan.kind,
                p.agent,
                p.service,
                T0_NS + round(plan.start_s * _NS),
                T0_NS + round(plan.end_s * _NS),
                _detail(plan),
            )
            for p in profiles
            for plan in p.plans
        ),
        key=lambda f: (f.start_ns, f.agent),
    )
    return Scenario(seed, duration, warmup_s, profiles, faults, deploys)


def _plan(kind: str, start: float, rng: random.Random, p: AgentProfile) -> _Plan:
    step = 1.0 / p.rate_per_s
    if kind == "tool_loop":
        n = rng.randint(4, 10)
        return _Plan(kind, start, start + (n - 1) * step + 0.1, factor=step, repeats=n)
    if kind == "cycle":
        period, n = rng.choice((2, 3)), rng.randint(3, 6)
        end = start + (period * n - 1) * step + 0.1
        return _Plan(kind, start, end, factor=step, repeats=n, period=period)
    if kind == "rate_spike":
        return _Plan(kind, start, start + rng.uniform(20, 60), factor=5.0)
    if kind == "rate_drop":
        return _Plan(kind, start, start + rng.uniform(60, 180), factor=rng.uniform(0.1, 0.2))
    if kind in ("stall", "heartbeat_loss", "goal_stall"):
        return _Plan(kind, start, start + rng.uniform(60, 180))
    if kind == "decision_drift":
        return _Plan(kind, start, start + rng.uniform(30, 120), factor=rng.uniform(0.6, 0.8))
    if kind == "error_burst":
        return _Plan(kind, start, start + rng.uniform(30, 90), factor=rng.uniform(0.6, 0.9))
    if kind == "slow_decisions":
        return _Plan(kind, start, start + rng.uniform(60, 120), factor=rng.uniform(6, 10))
    if kind == "message_flood":
        return _Plan(kind, start, start + rng.uniform(30, 90), factor=rng.uniform(10, 20))
    raise ValueError(f"unknown fault type {kind!r}")


def _detail(plan: _Plan) -> str:
    length = f"{plan.end_s - plan.start_s:.0f} s"
    if plan.kind == "tool_loop":
        return f"one call repeated {plan.repeats} times"
    if plan.kind == "cycle":
        return f"a {plan.period}-call cycle repeated {plan.repeats} times"
    if plan.kind in ("rate_spike", "rate_drop", "slow_decisions"):
        return f"x{plan.factor:.2g} for {length}"
    if plan.kind == "message_flood":
        return f"x{plan.factor:.2g} messages to one peer for {length}"
    if plan.kind in ("decision_drift", "error_burst"):
        return f"{plan.factor:.0%} of calls for {length}"
    return length
