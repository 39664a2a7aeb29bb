"""What alerts reads from an anomaly, as a Protocol, so alerts never imports the detectors (river).

``agentwatch.detectors.Anomaly`` satisfies :class:`AnomalyLike` structurally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

SEVERITY_INFO: Final = "info"
SEVERITY_WARNING: Final = "warning"
SEVERITY_CRITICAL: Final = "critical"
SEVERITY_RANK: Final[Mapping[str, int]] = {
    SEVERITY_INFO: 0,
    SEVERITY_WARNING: 1,
    SEVERITY_CRITICAL: 2,
}
"""Severity names in order; a ``StrEnum`` member looks up like its string value."""


class AnomalyLike(Protocol):
    """A detector's finding about one agent, as alerts reads it (read-only attributes)."""

    @property
    def id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def detector(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def severity(self) -> str: ...
    @property
    def onset_ns(self) -> int: ...
    @property
    def detected_ns(self) -> int: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...


def severity_rank(severity: str) -> int | None:
    """Return the rank of a severity name (info 0 < warning 1 < critical 2), None when unknown."""
    # An Enum member hashes by its name, not its value, so look up the plain string.
    return SEVERITY_RANK.get(str(getattr(severity, "value", severity)))


def summary_of(anomaly: AnomalyLike) -> str:
    """Return the evidence summary, or a generic one when the evidence has none."""
    summary = anomaly.evidence.get("summary")
    return str(summary) if summary else f"{anomaly.detector} anomaly on {anomaly.agent}"
