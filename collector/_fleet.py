"""A simulated fleet: agents with realistic, varied tool sequences, through the real SDK.

Each cohort has a tool repertoire and a Markov chain over it (``detectors._chains``, shared with
the event-level scenario generator of ``agentwatch backtest scenarios``); arguments vary per
call, so fingerprints repeat only when an agent really repeats itself. One agent can be made to
run away: a tool-call loop, then a flood.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agentwatch.detectors._chains import CHAINS, tool_args
from agentwatch.sdk import Agent, CircuitOpenError, init

__all__ = ["CHAINS", "Fleet", "RunawayPlan", "SimulatedAgent", "tool_args"]


@dataclass
class AgentStats:
    actions: int = 0
    stopped_at_ns: int = 0
    stop_reason: str = ""
    breaker_open_at_ns: int = 0


@dataclass
class RunawayPlan:
    """What the runaway agent does, and when each phase really started (ns)."""

    loop_calls: int = 4
    flood_calls: int = 400
    loop_started_ns: int = 0
    loop_calls_ns: list[int] = field(default_factory=list)
    flood_started_ns: int = 0
    go: threading.Event = field(default_factory=threading.Event)


class SimulatedAgent:
    """One agent thread: picks its next tool from its cohort's chain, calls it, thinks."""

    def __init__(
        self,
        agent: Agent,
        cohort: str,
        *,
        seed: int,
        stop: threading.Event,
        think_s: tuple[float, float] = (0.25, 0.55),
        runaway: RunawayPlan | None = None,
    ) -> None:
        self.agent = agent
        self.cohort = cohort
        self.rng = random.Random(seed)
        self.stop = stop
        self.think_s = think_s
        self.runaway = runaway
        self.stats = AgentStats()
        self.peers: list[str] = []  # other agents' instance ids, for messages
        self.thread = threading.Thread(target=self._run, name=agent.instance_id, daemon=True)
        agent.add_breaker_listener(self._on_breaker)

    def _on_breaker(self, state: object, reason: str, anomaly_id: str) -> None:
        if str(getattr(state, "value", state)) in ("open", "forced_open"):
            self.stats.breaker_open_at_ns = self.stats.breaker_open_at_ns or time.time_ns()

    def _call(self, tool: str, args: Mapping[str, object], latency_s: float) -> None:
        with self.agent.action(tool, args=dict(args)):
            self.stop.wait(latency_s)  # the tool's own latency
        self.stats.actions += 1

    def _run(self) -> None:
        chain = CHAINS[self.cohort]
        tool = self.rng.choice(list(chain))
        step = 0
        agent = self.agent
        try:
            while not self.stop.is_set():
                # One task: a session of decisions and tool calls, with state, goal progress,
                # checkpoints and a message to a peer now and then — every signal of the contract.
                task = f"task-{self.rng.randrange(10**6)}"
                with agent.session(self.cohort, conversation_id=task):
                    agent.transition("idle", "planning")
                    for i in range(self.rng.randint(3, 8)):
                        if self.runaway is not None and self.runaway.go.is_set():
                            self._run_away()
                            return
                        nexts, weights = zip(*chain[tool], strict=True)
                        with agent.decision(options=len(nexts)) as decision:
                            tool = self.rng.choices(nexts, weights)[0]
                            decision.choose(tool)
                        if i == 0:
                            agent.transition("planning", "acting")
                        self._call(tool, tool_args(tool, self.rng), self.rng.uniform(0.01, 0.08))
                        step += 1
                        agent.goal(task, min(1.0, (i + 1) / 6))
                        if step % 5 == 0:
                            agent.checkpoint(f"{agent.instance_id}-ck-{step}", step)
                        if self.peers and self.rng.random() < 0.1:
                            peer = self.rng.choice(self.peers)
                            agent.message(peer, "send", self.rng.randint(200, 4000))
                        self.stop.wait(self.rng.uniform(*self.think_s))
                    agent.transition("acting", "idle")
        except CircuitOpenError as exc:
            self.stats.stopped_at_ns = time.time_ns()
            self.stats.stop_reason = f"CircuitOpenError: breaker {exc.state.value}"

    def _run_away(self) -> None:
        plan = self.runaway
        assert plan is not None
        stuck = {"query": "latest results", "limit": 10}
        plan.loop_started_ns = time.time_ns()
        for _ in range(plan.loop_calls):  # the same call, again and again
            plan.loop_calls_ns.append(time.time_ns())
            self._call("web_search", stuck, 0.02)
            self.stop.wait(0.3)
        plan.flood_started_ns = time.time_ns()
        for i in range(plan.flood_calls):  # then it floods an API as fast as it can
            self._call("http_request", {"url": f"https://api.example.com/items/{i}"}, 0.002)
            if self.stop.is_set():
                return


class Fleet:
    """N simulated agents over the cohorts, each with its own SDK ``Agent``."""

    def __init__(
        self,
        size: int,
        *,
        endpoint: str,
        webhook_secret: str,
        seed: int = 7,
        heartbeat_interval_s: float = 1.0,
        runaway_index: int | None = None,
        make_agent: Callable[..., Agent] = init,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.stop = threading.Event()
        self.runaway = RunawayPlan()
        self.members: list[SimulatedAgent] = []
        cohorts = sorted(CHAINS)
        for i in range(size):
            cohort = cohorts[i % len(cohorts)]
            agent = make_agent(
                cohort,
                instance_id=f"{cohort}-{i:02d}",
                endpoint=endpoint,
                heartbeat_interval_s=heartbeat_interval_s,
                webhook_secret=webhook_secret,
            )
            self.members.append(
                SimulatedAgent(
                    agent,
                    cohort,
                    seed=seed * 1000 + i,
                    stop=self.stop,
                    runaway=self.runaway if i == runaway_index else None,
                )
            )

    def start(self) -> None:
        ids = [m.agent.instance_id for m in self.members]
        for member in self.members:
            member.peers = [i for i in ids if i != member.agent.instance_id]
            member.thread.start()

    @property
    def actions(self) -> int:
        return sum(m.stats.actions for m in self.members)

    def shutdown(self) -> None:
        self.stop.set()
        for member in self.members:
            member.thread.join(5)
        for member in self.members:
            member.agent.shutdown()
