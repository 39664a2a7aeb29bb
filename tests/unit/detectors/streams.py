"""Seeded synthetic action streams shared by the detector tests."""

from __future__ import annotations

import numpy as np

from agentwatch.detectors import AgentEvent, EventKind

T0_S = 1_700_000_000.0  # a realistic epoch, so float event time is exercised at its real scale
NS_PER_S = 1_000_000_000


def poisson_times(
    seed: int, *, rate_per_s: float, start_s: float, duration_s: float
) -> list[float]:
    """Event times of a Poisson process, in seconds."""
    rng = np.random.default_rng(seed)
    n = int(rate_per_s * duration_s * 2) + 10
    times = start_s + np.cumsum(rng.exponential(1.0 / rate_per_s, size=n))
    return [float(t) for t in times if t < start_s + duration_s]


def spike_times(start_s: float, *, n: int, duration_s: float) -> list[float]:
    """``n`` evenly spaced event times within ``[start_s, start_s + duration_s)``."""
    return [start_s + duration_s * k / n for k in range(n)]


def action(
    t_s: float,
    *,
    agent: str = "a1",
    fingerprint: str = "",
    key: str = "web_search",
    span_id: str = "",
) -> AgentEvent:
    return AgentEvent(
        agent=agent,
        service="researcher",
        kind=EventKind.ACTION,
        ts_ns=round(t_s * NS_PER_S),
        key=key,
        fingerprint=fingerprint,
        trace_id="ab" * 16,
        span_id=span_id,
    )


def window_start_ns(t_s: float, window_s: float = 1.0) -> int:
    return int(t_s // window_s) * round(window_s * NS_PER_S)
