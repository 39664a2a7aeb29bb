"""The alert model: identity is the label set; firing until its end time, resolved after it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from agentwatch.sdk.semconv import SERVICE_INSTANCE_ID

from ._anomaly import AnomalyLike, summary_of
from ._labels import fingerprint

LABEL_ALERTNAME: Final = "alertname"
LABEL_AGENT: Final = "agent"
LABEL_SERVICE: Final = "service"
LABEL_SEVERITY: Final = "severity"
LABEL_ENV: Final = "env"

ANNOTATION_SUMMARY: Final = "summary"
ANNOTATION_EVIDENCE: Final = "evidence"
ANNOTATION_QUERY: Final = "postmortem_query"
ANNOTATION_ANOMALY_ID: Final = "anomaly_id"
ANNOTATION_SCORE: Final = "score"
ANNOTATION_THRESHOLD: Final = "threshold"
ANNOTATION_TRACE_ID: Final = "trace_id"

STATUS_FIRING: Final = "firing"
STATUS_RESOLVED: Final = "resolved"

POSTMORTEM_WINDOW_NS: Final = 300 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. Its identity is its label set (:attr:`fingerprint`).

    Attributes:
        labels: alertname (the detector), agent, service, severity, env, and any others.
        annotations: summary, evidence (JSON), postmortem_query (SQL), anomaly_id, ...
        starts_at_ns: When it started firing, ns since the Unix epoch.
        ends_at_ns: When it resolves (or resolved); 0 when unknown (the resolve timeout sets it).
        updated_at_ns: When it was last pushed.
        generator_url: A link back to its source ("" when none).
        timeout: True when ``ends_at_ns`` was set by the resolve timeout, not by the source.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at_ns: int = 0
    ends_at_ns: int = 0
    updated_at_ns: int = 0
    generator_url: str = ""
    timeout: bool = False

    @property
    def fingerprint(self) -> str:
        """The label set's fingerprint (16 hex digits)."""
        return fingerprint(self.labels)

    def resolved(self, now_ns: int) -> bool:
        """True when the alert has an end time at or before ``now_ns``."""
        return self.ends_at_ns != 0 and self.ends_at_ns <= now_ns

    def status(self, now_ns: int) -> str:
        """``"firing"`` or ``"resolved"`` at ``now_ns``."""
        return STATUS_RESOLVED if self.resolved(now_ns) else STATUS_FIRING

    def merge(self, newer: Alert) -> Alert:
        """Alertmanager's ``Merge``: keep the earliest start; the newer push wins otherwise.

        A resolved alert that fires again (its new start is after the old end) starts anew.
        """
        if self.ends_at_ns and newer.starts_at_ns > self.ends_at_ns:
            return newer
        return replace(newer, starts_at_ns=min(self.starts_at_ns, newer.starts_at_ns))

    def to_dict(self, now_ns: int) -> dict[str, Any]:
        """Return the alert as API JSON (times in ns; ``status`` at ``now_ns``)."""
        return {
            "fingerprint": self.fingerprint,
            "status": self.status(now_ns),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at_ns": self.starts_at_ns,
            "ends_at_ns": self.ends_at_ns,
            "updated_at_ns": self.updated_at_ns,
            "generator_url": self.generator_url,
        }


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postmortem_query(anomaly: AnomalyLike, *, traces_table: str = "otel_traces") -> str:
    """Return a ClickHouse query for the agent's spans from 5 minutes before onset to detection."""
    start = max(0, anomaly.onset_ns - POSTMORTEM_WINDOW_NS)
    agent_key = f"ResourceAttributes[{_sql_string(SERVICE_INSTANCE_ID)}]"
    return (
        "SELECT Timestamp, TraceId, SpanId, SpanName, Duration, StatusCode, SpanAttributes"
        f" FROM {traces_table}"
        f" WHERE {agent_key} = {_sql_string(anomaly.agent)}"
        f" AND Timestamp BETWEEN fromUnixTimestamp64Nano({start})"
        f" AND fromUnixTimestamp64Nano({anomaly.detected_ns})"
        " ORDER BY Timestamp"
    )


def alert_from_anomaly(
    anomaly: AnomalyLike,
    *,
    env: str = "",
    generator_url: str = "",
    ends_at_ns: int = 0,
    traces_table: str = "otel_traces",
) -> Alert:
    """Build the alert for ``anomaly``: labels alertname=detector, agent, service, severity, env.

    Pure and thread-safe. Its start is the anomaly's detection time; no end time, so the resolve
    timeout (or an explicit resolve) ends it.
    """
    severity = str(getattr(anomaly.severity, "value", anomaly.severity))
    labels = {
        LABEL_ALERTNAME: anomaly.detector,
        LABEL_AGENT: anomaly.agent,
        LABEL_SERVICE: anomaly.service,
        LABEL_SEVERITY: severity,
        LABEL_ENV: env,
    }
    labels = {name: value for name, value in labels.items() if value}  # empty means absent
    annotations = {
        ANNOTATION_SUMMARY: summary_of(anomaly),
        ANNOTATION_EVIDENCE: json.dumps(dict(anomaly.evidence), sort_keys=True, default=str),
        ANNOTATION_QUERY: postmortem_query(anomaly, traces_table=traces_table),
        ANNOTATION_ANOMALY_ID: anomaly.id,
        ANNOTATION_SCORE: f"{float(anomaly.score):.6g}",
        ANNOTATION_THRESHOLD: f"{float(anomaly.threshold):.6g}",
        ANNOTATION_TRACE_ID: anomaly.trace_id,
    }
    return Alert(
        labels=labels,
        annotations=annotations,
        starts_at_ns=anomaly.detected_ns,
        ends_at_ns=ends_at_ns,
        updated_at_ns=anomaly.detected_ns,
        generator_url=generator_url,
    )
