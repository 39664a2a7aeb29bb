"""Simulated fleets with labelled injected faults, in simulated time, for the scenario backtest.

Pure and seeded: no SDK, no real time, no I/O. Each agent's events (decisions, actions, goal
progress, messages, heartbeats) come from a generator in event-time order; :meth:`Scenario.events`
merges the fleet's. The cohorts' tool chains are those of the demo's fleet (``_chains``).

Normal variation, so that detectors are judged against more than a steady Poisson stream:

* steady agents (1.5-4 actions/s) and bursty ones (sessions at 3-6 actions/s, idle 10-90 s in
  between, reporting ``idle`` in their heartbeats);
* a load cycle: every agent's rate follows a sine of +-35 % whose period is the run's length (a
  day compressed into the run), with a phase per cohort;
* agents joining during the first half and leaving during the second; a leaving agent's last
  heartbeat reports status ``stopped`` (:data:`STATUS_STOPPED`, not yet in the SDK);
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
(actions go on, goal progress stays flat for 60-180 s). No fault starts before an agent's
``warmup_s``; faults on one agent are 5-10 minutes apart.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from agentwatch.detectors._chains import CHAINS, DESTRUCTIVE_TOOLS
from agentwatch.detectors._types import AgentEvent, EventKind

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
)
STATUS_RUNNING, STATUS_IDLE = "running", "idle"
STATUS_STOPPED = "stopped"  # a leaving agent's last heartbeat (a proposed contract value)
_DEAD = "\x00dead"  # internal: the process is gone, no heartbeats
_END = "\x00end"  # internal: the run ends, the agent stays

T0_NS = 1_700_000_000 * 1_000_000_000
_NS = 1_000_000_000
_DESTRUCTIVE_P = 0.003
_DEPLOY_RAMP_S = 600.0


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
class _Plan:
    kind: str
    start_s: float
    end_s: float
    factor: float = 1.0  # rate or latency multiplier, error or drift share, a loop's step (s)
    repeats: int = 0
    period: int = 0


@dataclass(slots=True)
class AgentProfile:
    """One simulated agent's character.

    Attributes:
        agent: Instance id.
        service: Cohort.
        bursty: Works in sessions separated by idle periods.
        rate_per_s: Actions per second while working (before the load cycle).
        heartbeat_s: Heartbeat interval.
        error_p: Share of failing calls.
        latency_s: Median decision latency.
        latency_sigma: Log-normal sigma of the decision latency.
        join_s: When it starts (s after the run's start).
        leave_s: When it leaves for good (s); the run's end when it stays.
    """

    agent: str
    service: str
    bursty: bool
    rate_per_s: float
    heartbeat_s: float
    error_p: float
    latency_s: float
    latency_sigma: float
    join_s: float
    leave_s: float
    plans: list[_Plan] = field(default_factory=list)


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
            _AgentSim(p, self, random.Random(f"{self.seed}/{p.agent}")).events()
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
    raise ValueError(f"unknown fault type {kind!r}")


def _detail(plan: _Plan) -> str:
    length = f"{plan.end_s - plan.start_s:.0f} s"
    if plan.kind == "tool_loop":
        return f"one call repeated {plan.repeats} times"
    if plan.kind == "cycle":
        return f"a {plan.period}-call cycle repeated {plan.repeats} times"
    if plan.kind in ("rate_spike", "rate_drop", "slow_decisions"):
        return f"x{plan.factor:.2g} for {length}"
    if plan.kind in ("decision_drift", "error_burst"):
        return f"{plan.factor:.0%} of calls for {length}"
    return length


class _AgentSim:
    """One agent's behaviour in simulated time (seconds after the run's start)."""

    def __init__(self, profile: AgentProfile, scenario: Scenario, rng: random.Random) -> None:
        self.p = profile
        self.rng = rng
        self.chain = CHAINS[profile.service]
        self.deploy_s, self.deployed = scenario._deploys[profile.service]
        self.duration = scenario.duration_s
        self.phase = 2 * math.pi * (sorted(CHAINS).index(profile.service) / len(CHAINS))
        self.tool = rng.choice(list(self.chain))
        self.n = 0  # fingerprints are unique per call unless a fault repeats one
        self.last = 0.0  # time of the latest activity event: each agent's stream stays ordered

    # --- heartbeats around the activity -------------------------------------------------------
    def events(self) -> Iterator[AgentEvent]:
        p = self.p
        status = STATUS_RUNNING
        next_beat = p.join_s
        for t, item in self._activity():
            t = max(t, self.last)
            while status != _DEAD and next_beat <= t:
                yield self._event(EventKind.HEARTBEAT, next_beat, key=status, value=p.heartbeat_s)
                self.last = max(self.last, next_beat)
                next_beat += p.heartbeat_s
            if isinstance(item, AgentEvent):
                yield item
                continue
            if item == _END:
                break
            if item == STATUS_STOPPED:
                yield self._event(EventKind.HEARTBEAT, t, key=item, value=p.heartbeat_s)
                return
            self.last = t
            if status == _DEAD and item != _DEAD:
                next_beat = t  # a restarted process beats at start
            status = item
        while status != _DEAD and next_beat < p.leave_s:
            yield self._event(EventKind.HEARTBEAT, next_beat, key=status, value=p.heartbeat_s)
            next_beat += p.heartbeat_s

    def _event(
        self,
        kind: EventKind,
        t: float,
        *,
        key: str = "",
        fingerprint: str = "",
        error: bool = False,
        duration_s: float = 0.0,
        value: float = 0.0,
    ) -> AgentEvent:
        return AgentEvent(
            self.p.agent,
            self.p.service,
            kind,
            T0_NS + round(t * _NS),
            key,
            fingerprint,
            error,
            "",
            "",
            duration_s,
            value,
        )

    # --- activity -------------------------------------------------------------------------------
    def _activity(self) -> Iterator[tuple[float, AgentEvent | str]]:
        p, rng = self.p, self.rng
        plans = list(p.plans)
        t = p.join_s
        yield t, STATUS_RUNNING
        while True:
            plan = plans[0] if plans else None
            goal = f"goal-{rng.randrange(1 << 32):08x}"
            steps = rng.randint(5, 15) if p.bursty else rng.randint(3, 8)
            for i in range(steps):
                decision = self._latency()
                at = t + max(rng.expovariate(self._rate(t)), decision + 0.02)
                if plan is not None and at >= plan.start_s:
                    t = yield from self._fault(plan, t, goal, i / steps)
                    plans.pop(0)
                    break
                if at >= p.leave_s:
                    yield p.leave_s, STATUS_STOPPED if p.leave_s < self.duration else _END
                    return
                tool = self._next_tool(at)
                yield from self._step(at, decision, tool, progress=(i + 1) / steps, goal=goal)
                t = at
            else:
                if p.bursty:
                    yield t + 0.1, STATUS_IDLE
                    t += rng.uniform(10, 90)
                    if plan is not None and t >= plan.start_s:
                        t = plan.start_s
                    if t >= p.leave_s:
                        yield p.leave_s, STATUS_STOPPED if p.leave_s < self.duration else _END
                        return
                    yield t, STATUS_RUNNING

    def _step(
        self,
        at: float,
        decision_s: float,
        tool: str,
        *,
        progress: float | None,
        goal: str,
        fingerprint: str = "",
        error_p: float | None = None,
    ) -> Iterator[tuple[float, AgentEvent]]:
        rng = self.rng
        if decision_s > 0:
            decided = max(at - decision_s, self.last)
            yield decided, self._event(EventKind.DECISION, decided, key=tool, duration_s=decision_s)
        at = max(at, self.last)
        if not fingerprint:
            self.n += 1
            fingerprint = f"call-{self.n}"
        latency = rng.uniform(0.005, 0.015)
        failed = rng.random() < (self.p.error_p if error_p is None else error_p)
        yield at, self._event(
            EventKind.ACTION, at, key=tool, fingerprint=fingerprint, error=failed,
            duration_s=latency,
        )  # fmt: skip
        self.last = at + latency
        if progress is not None:
            yield at + latency, self._event(EventKind.GOAL, at + latency, key=goal, value=progress)
        if rng.random() < 0.1:
            peer = f"{self.p.service}-peer"
            yield (
                at + latency,
                self._event(
                    EventKind.MESSAGE, at + latency, key=peer, value=rng.randint(200, 4000)
                ),
            )

    def _rate(self, t: float) -> float:
        load = 1.0 + 0.35 * math.sin(2 * math.pi * t / self.duration + self.phase)
        return self.p.rate_per_s * load

    def _latency(self, factor: float = 1.0) -> float:
        p = self.p
        slow = 3.0 if self.rng.random() < 0.02 else 1.0
        return p.latency_s * slow * factor * math.exp(self.rng.gauss(0.0, p.latency_sigma))

    def _next_tool(self, t: float) -> str:
        rng = self.rng
        if rng.random() < _DESTRUCTIVE_P:
            return DESTRUCTIVE_TOOLS[self.p.service]
        nexts = self.chain.get(self.tool) or next(iter(self.chain.values()))
        weights = [float(w) for _, w in nexts]
        ramp = (t - self.deploy_s) / _DEPLOY_RAMP_S
        if ramp > 0:
            share = min(1.0, ramp)
            new = self.deployed[self.tool]
            weights = [(1 - share) * w + share * v for w, v in zip(weights, new, strict=True)]
        self.tool = rng.choices([tool for tool, _ in nexts], weights)[0]
        return self.tool

    # --- faults ---------------------------------------------------------------------------------
    def _fault(
        self, plan: _Plan, t: float, goal: str, progress: float
    ) -> Generator[tuple[float, AgentEvent | str], None, float]:
        """Runs one fault from its planned onset; returns the time normal work resumes."""
        rng, kind = self.rng, plan.kind
        start, end = plan.start_s, plan.end_s
        if kind in ("tool_loop", "cycle"):
            tools = [self._next_tool(start) for _ in range(max(plan.period, 1))]
            fingerprints = [f"stuck-{self.n}-{j}" for j in range(len(tools))]
            calls, step = plan.repeats * len(tools), plan.factor
            for j in range(calls):
                at = start + j * step
                decision = min(self._latency(), step * 0.8)
                yield from self._step(
                    at, decision, tools[j % len(tools)], progress=None, goal=goal,
                    fingerprint=fingerprints[j % len(tools)],
                )  # fmt: skip
            return end
        if kind == "heartbeat_loss":
            yield start, _DEAD
            yield end, STATUS_RUNNING
            return end
        if kind == "stall":
            yield start, STATUS_RUNNING
            return end
        t = start
        frozen = progress
        # The agent's usual step at this time of day, decision latency included: a spike is five
        # times its real rate, not its nominal one.
        usual_step = (
            sum(max(rng.expovariate(self._rate(start)), self._latency() + 0.02) for _ in range(64))
            / 64
        )
        while True:
            factor = plan.factor if kind in ("rate_spike", "rate_drop") else 1.0
            latency_factor = plan.factor if kind == "slow_decisions" else 1.0
            decision = self._latency(latency_factor)
            at = t + max(rng.expovariate(self._rate(t) * factor), decision + 0.02)
            if kind == "rate_spike":
                # A runaway agent floods calls without deliberating (as the demo's does).
                decision = 0.0
                at = t + rng.expovariate(factor / usual_step)
            if at >= end:
                return end
            tool = self._next_tool(at)
            if kind == "decision_drift" and rng.random() < plan.factor:
                tool = DESTRUCTIVE_TOOLS[self.p.service]
            if kind == "goal_stall":
                progress_now: float | None = frozen
            else:
                progress = min(1.0, progress + 0.1)
                progress_now = progress
            yield from self._step(
                at, decision, tool, progress=progress_now, goal=goal,
                error_p=plan.factor if kind == "error_burst" else None,
            )  # fmt: skip
            t = at
