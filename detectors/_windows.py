"""What the windowed-count detectors (action rate, message volume) share."""

from __future__ import annotations

import math

__all__ = ["check_window_settings"]

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
