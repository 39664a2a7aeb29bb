"""Remediation policy: which runtime actions an anomaly calls for, by detector and severity."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from agentwatch.sdk.semconv import BREAKER_OPEN, CONTROL_TYPE_BREAKER, CONTROL_TYPE_ROLLBACK

from ._anomaly import SEVERITY_RANK, AnomalyLike, severity_rank, summary_of
from ._control import ControlCommand

logger = logging.getLogger(__name__)

NEVER = "never"
"""A per-detector threshold that disables the breaker for that detector."""

COHORT_DETECTORS = frozenset({"agent_count"})
"""Detectors whose anomalies concern a whole cohort (``agentwatch.detectors``' agent count, its
``agent`` a placeholder): they call for no per-agent command, whatever the thresholds."""


def _check_threshold(name: str, value: str) -> None:
    if value != NEVER and value not in SEVERITY_RANK:
        choices = [*SEVERITY_RANK, NEVER]
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class RemediationPolicy:
    """Decides the control commands for one anomaly.

    The breaker of the anomaly's agent opens when the anomaly's severity is at least the threshold
    for its detector: ``per_detector[detector]`` when present, else ``breaker_min_severity``.
    A threshold of ``"never"`` disables the breaker. Anomalies of :data:`COHORT_DETECTORS` call
    for no command at all: they name no agent to act on. A rollback (its checkpoint chosen later by
    the remediator) is called for likewise by ``rollback_min_severity`` / ``rollback_per_detector``
    (default ``"never"``: no rollbacks).

    Immutable after construction, so thread-safe; ``decide`` is pure and non-blocking.

    Args:
        breaker_min_severity: ``"info"``, ``"warning"``, ``"critical"`` or ``"never"``.
        per_detector: Detector name -> threshold, overriding ``breaker_min_severity``.
        rollback_min_severity: Threshold for a rollback; ``"never"`` by default.
        rollback_per_detector: Detector name -> rollback threshold.

    Raises:
        ValueError: A threshold is not a known severity or ``"never"``; the message names it.
    """

    def __init__(
        self,
        breaker_min_severity: str = "critical",
        per_detector: Mapping[str, str] | None = None,
        *,
        rollback_min_severity: str = NEVER,
        rollback_per_detector: Mapping[str, str] | None = None,
    ) -> None:
        _check_threshold("breaker_min_severity", breaker_min_severity)
        _check_threshold("rollback_min_severity", rollback_min_severity)
        overrides = dict(per_detector or {})
        for detector, value in overrides.items():
            _check_threshold(f"per_detector[{detector!r}]", value)
        rollbacks = dict(rollback_per_detector or {})
        for detector, value in rollbacks.items():
            _check_threshold(f"rollback_per_detector[{detector!r}]", value)
        self.breaker_min_severity = breaker_min_severity
        self.per_detector: Mapping[str, str] = MappingProxyType(overrides)
        self.rollback_min_severity = rollback_min_severity
        self.rollback_per_detector: Mapping[str, str] = MappingProxyType(rollbacks)

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
        if anomaly.detector in COHORT_DETECTORS:
            return []
        rank = severity_rank(anomaly.severity)
        if rank is None:
            logger.warning(
                "anomaly %s has unknown severity %r; no remediation", anomaly.id, anomaly.severity
            )
            return []
        issued = time.time_ns() if now_ns is None else now_ns
        commands = []
        if _reaches(rank, self.breaker_threshold(anomaly.detector)):
            commands.append(
                ControlCommand(
                    type=CONTROL_TYPE_BREAKER,
                    agent=anomaly.agent,
                    state=BREAKER_OPEN,
                    reason=summary_of(anomaly),
                    anomaly_id=anomaly.id,
                    issued_ns=issued,
                )
            )
        rollback = self.rollback_per_detector.get(anomaly.detector, self.rollback_min_severity)
        if _reaches(rank, rollback):
            commands.append(
                ControlCommand(
                    type=CONTROL_TYPE_ROLLBACK,
                    agent=anomaly.agent,
                    reason=summary_of(anomaly),
                    anomaly_id=anomaly.id,
                    issued_ns=issued,
                )
            )
        return commands


def _reaches(rank: int, threshold: str) -> bool:
    return threshold != NEVER and rank >= SEVERITY_RANK[threshold]
