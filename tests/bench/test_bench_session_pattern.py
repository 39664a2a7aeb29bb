"""What ``session_pattern`` (opt-in) finds and how often it warns on a normal fleet.

Prints ``BENCH`` lines, asserts nothing about the figures (STYLE.md, Tests): the README quotes
them. Run: ``.venv/bin/python -m pytest tests/bench/test_bench_session_pattern.py -s -q``.
"""

from __future__ import annotations

from agentwatch.detectors import EventKind
from agentwatch.detectors._scenarios import make_scenario
from agentwatch.detectors._sequence import precision_recall_f1
from agentwatch.detectors._session_pattern import CohortSessions
from agentwatch.detectors._sessions import synthetic_sessions

ADOPT_AFTER = (5, 20, 100)


def test_bench_session_pattern_on_synthetic_sessions() -> None:
    for adopt_after in ADOPT_AFTER:
        for seed in (0, 1, 2):
            data = synthetic_sessions(seed, n_train=6000, n_test=2000)
            cohort = CohortSessions(adopt_after=adopt_after)
            for keys in data.train:
                cohort.judge("svc", keys)
            flags = [cohort.judge("svc", keys) is not None for keys in data.test]
            s = precision_recall_f1(flags, data.labels)
            print(
                f"\nBENCH session_pattern_synthetic adopt_after={adopt_after} seed={seed}: "
                f"P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}"
            )


def test_bench_session_pattern_on_a_normal_fleet() -> None:
    """Each goal of a simulated agent (3-15 calls) as a session, in the order they end."""
    scenario = make_scenario(1, agents=200, hours=1, fault_share=0.0)
    sessions: list[tuple[str, list[str]]] = []
    open_calls: dict[str, list[str]] = {}
    for event in scenario.events():
        if event.kind is EventKind.ACTION:
            open_calls.setdefault(event.agent, []).append(event.key)
        elif event.kind is EventKind.GOAL and event.value >= 0.999:
            sessions.append((event.service, open_calls.pop(event.agent, [])))
    for adopt_after in ADOPT_AFTER:
        cohort = CohortSessions(adopt_after=adopt_after)
        warned = sum(cohort.judge(service, keys) is not None for service, keys in sessions)
        print(
            f"\nBENCH session_pattern_normal_fleet adopt_after={adopt_after}: {warned} warnings "
            f"in {len(sessions):,} sessions (200 agents, 1 simulated hour)"
        )
