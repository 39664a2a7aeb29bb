"""The service's own rows: spool records, anomalies, incidents and deliveries, as stored in
ClickHouse and as the API returns them."""

from __future__ import annotations

import json
import time
from typing import Any

from agentwatch.alerts import Delivery
from agentwatch.detectors import Anomaly

from ._otlp import DEFAULT_LIMITS, Limits, decode_request, request_to_rows

ANOMALY_COLUMNS = (
    "Id", "Agent", "Service", "Detector", "Score", "Threshold", "Severity",
    "OnsetAt", "DetectedAt", "Summary", "Evidence", "TraceId", "SpanId",
)  # fmt: skip
INCIDENT_COLUMNS = (
    "Id", "Agent", "Kind", "AnomalyId", "DetectedAt", "HealthyAt", "CheckpointId",
    "CheckpointStep", "FailedStep", "Standby", "RtoSeconds", "RpoSteps", "UpdatedAt",
)  # fmt: skip
REMEDIATION_COLUMNS = (
    "Timestamp", "Agent", "Kind", "Action", "AnomalyId", "WebhookId",
    "Attempts", "StatusCode", "Ok", "Error", "LatencyMs",
)  # fmt: skip

# A spool record is a one-byte format tag, then the request body as received.
PROTOBUF_RECORD = b"p"
JSON_RECORD = b"j"


def decode_record(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> list[list[Any]]:
    """A spool record (a one-byte format tag, then the request body) back to rows."""
    media = "application/json" if payload[:1] == JSON_RECORD else "application/x-protobuf"
    return request_to_rows(decode_request(payload[1:], media), limits).rows


def rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:09d}Z"


def anomaly_row(a: Anomaly) -> list[Any]:
    return [
        a.id, a.agent, a.service, a.detector, float(a.score), float(a.threshold),
        str(a.severity), a.onset_ns, a.detected_ns, a.summary,
        json.dumps(a.evidence, sort_keys=True, default=str), a.trace_id, a.span_id,
    ]  # fmt: skip


def anomaly_json(row: tuple[Any, ...]) -> dict[str, Any]:
    (id_, agent, service, detector, score, threshold, severity, onset, detected, evidence,
     trace_id, span_id) = row  # fmt: skip
    return {
        "id": id_,
        "agent": agent,
        "service": service,
        "detector": detector,
        "score": score,
        "threshold": threshold,
        "severity": severity,
        "onset_at": rfc3339(int(onset)),
        "detected_at": rfc3339(int(detected)),
        "evidence": json.loads(evidence) if evidence else {},
        "trace_id": trace_id,
        "span_id": span_id,
    }


def delivery_row(d: Delivery) -> list[Any]:
    latency_ms = max(0, d.finished_ns - d.started_ns) / 1e6
    return [
        d.finished_ns, d.agent, d.target, d.action, d.anomaly_id, d.webhook_id, d.attempts,
        d.status_code if d.status_code is not None else -1, d.ok, d.error, latency_ms,
    ]  # fmt: skip
