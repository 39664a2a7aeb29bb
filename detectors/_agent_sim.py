"""One simulated agent: its character, its planned faults, and its events in simulated time.

The per-agent half of the scenario simulator (``_scenarios`` plans the fleet and its faults and
merges the agents' streams): :class:`_AgentSim` turns an :class:`AgentProfile` and its plans into
one event-time ordered stream of decisions, actions, goal progress, messages and heartbeats.
Pure and seeded: the caller passes the agent's ``random.Random``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from agentwatch.detectors._chains import CHAINS, DESTRUCTIVE_TOOLS
from agentwatch.detectors._types import AgentEvent, EventKind

__all__ = ["STATUS_STOPPED", "T0_NS", "AgentProfile"]

STATUS_RUNNING, STATUS_IDLE = "running", "idle"
# A leaving agent's last heartbeat: the SDK's ``semconv.STATUS_STOPPED`` (detectors import no SDK).
STATUS_STOPPED = "stopped"
_DEAD = "\x00dead"  # internal: the process is gone, no heartbeats
_END = "\x00end"  # internal: the run ends, the agent stays

T0_NS = 1_700_000_000 * 1_000_000_000
_NS = 1_000_000_000
_DESTRUCTIVE_P = 0.003
_MESSAGE_P = 0.1  # share of steps followed by a message to the cohort's usual peer
_DEPLOY_RAMP_S = 600.0


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


class _AgentSim:
    """One agent's behaviour in simulated time (seconds after the run's start)."""

    def __init__(
        self,
        profile: AgentProfile,
        rng: random.Random,
        *,
        duration_s: float,
        deploy: tuple[float, dict[str, list[int]]],
    ) -> None:
        self.p = profile
        self.rng = rng
        self.chain = CHAINS[profile.service]
        self.deploy_s, self.deployed = deploy  # when the cohort's new tool mix starts, and it
        self.duration = duration_s
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
        if rng.random() < _MESSAGE_P:
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
        flood_peer, flood_rate, next_message = "", 0.0, math.inf
        if kind == "message_flood":
            # A chatty loop with one peer: the agent works on as usual, and messages that peer
            # ``factor`` times as often as it usually sends messages.
            flood_peer = f"{self.p.service}-{rng.randrange(10_000):04d}"
            flood_rate = plan.factor * _MESSAGE_P / usual_step
            next_message = start + rng.expovariate(flood_rate)
        while True:
            factor = plan.factor if kind in ("rate_spike", "rate_drop") else 1.0
            latency_factor = plan.factor if kind == "slow_decisions" else 1.0
            decision = self._latency(latency_factor)
            at = t + max(rng.expovariate(self._rate(t) * factor), decision + 0.02)
            if kind == "rate_spike":
                # A runaway agent floods calls without deliberating (as the demo's does).
                decision = 0.0
                at = t + rng.expovariate(factor / usual_step)
            while next_message < at and next_message < end:
                sent = self.last = max(next_message, self.last)
                size = rng.randint(200, 4000)
                yield sent, self._event(EventKind.MESSAGE, sent, key=flood_peer, value=size)
                next_message += rng.expovariate(flood_rate)
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
