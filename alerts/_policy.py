"""Remediation policy: which runtime actions an anomaly calls for, by detector and severity."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from agentwatch.sdk.semconv import BREAKER_OPEN, CONTROL_TYPE_BREAKER

from ._anomaly import SEVERITY_RANK, AnomalyLike, severity_rank, summary_of
from ._control import ControlCommand

logger = logging.getLogger(__name__)

NEVER = "never"
"""A per-detector threshold that disables the breaker for that detector."""


def _check_threshold(name: str, value: str) -> None:
    if value != NEVER and value not in SEVERITY_RANK:
        choices = [*SEVERITY_RANK, NEVER]
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class RemediationPolicy:
    """Decides the control commands for one anomaly.

    The breaker of the anomaly's agent opens when the anomaly's severity is at least the threshold
    for its detector: ``per_detector[detector]`` when present, else ``breaker_min_severity``.
    A threshold of ``"never"`` disables the breaker. Rollback and failover come in a later issue.

    Immutable after construction, so thread-safe; ``decide`` is pure and non-blocking.

    Args:
        breaker_min_severity: ``"info"``, ``"warning"``, ``"critical"`` or ``"never"``.
        per_detector: Detector name -> threshold, overriding ``breaker_min_severity``.

    Raises:
        ValueError: A threshold is not a known severity or ``"never"``; the message names it.
    """

    def __init__(
        self,
        breaker_min_severity: str = "critical",
        per_detector: Mapping[str, str] | None = None,
    ) -> None:
        _check_threshold("breaker_min_severity", breaker_min_severity)
        overrides = dict(per_detector or {})
        for detector, value in overrides.items():
            _check_threshold(f"per_detector[{detector!r}]", value)
        self.breaker_min_severity = breaker_min_severity
        self.per_detector: Mapping[str, str] = MappingProxyType(overrides)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(breaker_min_severity={self.breaker_min_severity!r}, "
            f"per_detector={dict(self.per_detector)!r})"
        )

    def breaker_threshold(self, detector: str) -> str:
        """Return the breaker threshold that applies to ``detector``."""
        return self.per_detector.get(detector, self.breaker_min_severity)

    def decide(self, anomaly: AnomalyLike, *, now_ns: int | None = None) -> list[ControlCommand]:
        """Return the commands ``anomaly`` calls for (possibly none).

        Args:
            anomaly: The finding.
            now_ns: The commands' issue time; the wall clock by default.
        """
        threshold = self.breaker_threshold(anomaly.detector)
        if threshold == NEVER:
            return []
        rank = severity_rank(anomaly.severity)
        if rank is None:
            logger.warning(
                "anomaly %s has unknown severity %r; no remediation", anomaly.id, anomaly.severity
            )
            return []
        if rank < SEVERITY_RANK[threshold]:
            return []
        return [
            ControlCommand(
                type=CONTROL_TYPE_BREAKER,
                agent=anomaly.agent,
                state=BREAKER_OPEN,
                reason=summary_of(anomaly),
                anomaly_id=anomaly.id,
                issued_ns=time.time_ns() if now_ns is None else now_ns,
            )
        ]
