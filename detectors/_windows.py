"""What the windowed-count detectors (action rate, message volume) share."""

from __future__ import annotations

import math
from typing import Final

__all__ = ["check_window_settings", "poisson_surprise", "surprise_above"]

_LEAST_SURPRISE: Final = 1.0  # surprise_above reports less as nothing (not worth its logarithm)

# Scales of the sums of two and three windows' counts (independent windows: sqrt(k) times one's)
_SQRT2, _SQRT3 = math.sqrt(2.0), math.sqrt(3.0)


def check_window_settings(
    window_s: float,
    alpha: float,
    warmup_windows: int,
    max_gap_windows: int,
    clip_z: float,
    hold_windows: int,
) -> None:
    """Raises ValueError naming the first bad setting of a windowed count's baseline (the
    action rate's, the message volume's)."""
    if not (window_s > 0 and math.isfinite(window_s)):
        raise ValueError(f"window_s must be a finite number > 0, got {window_s}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if warmup_windows < 1:
        raise ValueError(f"warmup_windows must be >= 1, got {warmup_windows}")
    if max_gap_windows < 0:
        raise ValueError(f"max_gap_windows must be >= 0, got {max_gap_windows}")
    if not clip_z > 0:
        raise ValueError(f"clip_z must be > 0, got {clip_z}")
    if hold_windows < 0:
        raise ValueError(f"hold_windows must be >= 0, got {hold_windows}")


def poisson_surprise(observed: float, expected: float, dispersion: float) -> float:
    """How far ``observed`` events are above ``expected`` ones, on the z-score's scale.

    The signed root of the Poisson deviance, ``sqrt(2 (x ln(x / mu) - (x - mu)) / dispersion)``
    for ``x`` above ``mu``, else 0.0: its upper tail is close to the standard normal's even for
    a handful of events, where ``(x - mu) / sqrt(mu)`` overstates how rare a count is (9
    actions where 1.5 are usual is z = 6.1, one window in 40,000 of a Poisson stream; this gives
    4.2). ``dispersion`` (>= 1) is the variance-to-mean ratio of the counts: burstier streams
    need more to surprise. ``expected`` must be > 0.
    """
    if observed <= expected:
        return 0.0
    return math.sqrt(
        2.0 * (observed * math.log(observed / expected) - observed + expected) / dispersion
    )


def surprise_above(observed: float, expected: float, dispersion: float, best: float) -> float:
    """``max(best, poisson_surprise(observed, expected, dispersion))``, where surprises below 1
    count as 0.0: the logarithm is skipped when the z-score ``(observed - expected) /
    sqrt(dispersion * expected)``, never below the surprise, cannot beat ``best`` or reach 1."""
    excess = observed - expected
    bar = best if best > _LEAST_SURPRISE else _LEAST_SURPRISE
    if excess <= 0.0 or excess * excess < bar * bar * dispersion * expected:
        return best
    z = poisson_surprise(observed, expected, dispersion)
    return z if z > best else best
