"""The service's settings: explicit argument, then ``AGENTWATCH_*`` variable, then default."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentwatch.sdk import semconv

_REMEDIATION_KEYS = {
    "breaker_min_severity": ("breaker_min_severity", str),
    "per_detector": ("breaker_policy", dict),
    "rollback_min_severity": ("rollback_min_severity", str),
    "open_wait": ("breaker_open_wait_s", None),
    "probe_actions": ("breaker_probe_actions", int),
    "shadow": ("shadow", bool),
}


def load_config(path: Path) -> dict[str, Any]:
    """Settings from a YAML file: top-level setting names, plus ``alerting:`` (Alertmanager's
    shape) and ``remediation:`` (breaker_min_severity, per_detector, rollback_min_severity,
    open_wait, probe_actions, shadow).

    Raises:
        ConfigError: The file is missing, not YAML, or has unknown keys; the message says which.
    """
    import yaml

    from agentwatch.alerts import parse_duration

    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must be a mapping at the top level")
    values: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(ServiceSettings)}
    for key, value in document.items():
        if key == "remediation":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: remediation must be a mapping")
            for sub_key, sub_value in value.items():
                if sub_key not in _REMEDIATION_KEYS:
                    raise ConfigError(
                        f"{path}: unknown remediation.{sub_key}; known: "
                        + ", ".join(sorted(_REMEDIATION_KEYS))
                    )
                name, convert = _REMEDIATION_KEYS[sub_key]
                try:
                    values[name] = (
                        parse_duration(sub_value, f"remediation.{sub_key}")
                        if convert is None
                        else convert(sub_value)
                    )
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{path}: remediation.{sub_key}: {exc}") from exc
        elif key in known:
            paths = ("data_dir", "detector_snapshot_path", "tls_cert_file", "tls_key_file")
            values[key] = Path(value) if key in paths else value
        else:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return values


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and what to do."""


_SEVERITIES = ("info", "warning", "critical", "never")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything ``agentwatch serve`` needs.

    Attributes:
        data_dir: Holds the embedded ClickHouse (``DIR/clickhouse``) and service state.
        clickhouse_dsn: A server DSN (``http(s)://user:pass@host:8123/db``); None means the
            embedded engine under ``data_dir``.
        clickhouse_cluster: Apply the schema ``ON CLUSTER`` this cluster at start (Replicated
            tables under Distributed ones, as ``agentwatch migrate --cluster``); needs a server.
        host: Address the OTLP and API ports bind to.
        otlp_http_port: OTLP/HTTP port (0 picks a free one).
        otlp_grpc_port: OTLP/gRPC port (0 picks a free one; -1 disables gRPC).
        api_port: REST API port (0 picks a free one).
        webhook_secret: Standard Webhooks secret (``whsec_...``) signing control webhooks.
        slack_webhook_url: Slack incoming-webhook URL for notifications; None disables Slack.
        breaker_min_severity: The least severity that opens an agent's breaker.
        breaker_policy: Per-detector overrides of ``breaker_min_severity`` (or ``never``).
        ttl_days: Retention of every table (0 keeps rows forever).
        max_pending_rows: Memory bound on decoded rows waiting for ClickHouse; beyond it rows
            wait on disk only (in the spool) and are decoded again when their turn comes.
        spool_max_bytes: Disk budget of the spool; beyond it ingest answers 429 / UNAVAILABLE.
        spool_fsync: fsync every acknowledged request (turn off only for benchmarks).
        max_request_bytes: Largest accepted request body, as sent and after decompression.
        max_inflight_requests: OTLP/HTTP requests handled at once; beyond it 429 with
            Retry-After, before the body is read, so memory stays bounded (at most about
            twice this many times ``max_request_bytes``).
        ingest_token: Bearer token OTLP clients must send; required when ``host`` is not a
            loopback address, so an exposed receiver is never open.
        api_token: Bearer token for ``/api/*`` (agents' pull fallback sends it too); None leaves
            the API open, which is only allowed on loopback.
        alerting: Alertmanager-shaped routing (``route``, ``receivers``, ``inhibit_rules``,
            ``resolve_timeout``); None sends no grouped notifications (Slack still gets each
            anomaly when ``slack_webhook_url`` is set).
        rollback_min_severity: The least severity that rolls an agent back (``never`` default).
        breaker_open_wait_s: Time in OPEN before HALF_OPEN lets probe actions through.
        breaker_probe_actions: Normal actions in HALF_OPEN that close the breaker.
        shadow: METRICS_ONLY for every agent: decide and log, send no control webhook.
        heartbeat_misses: Missed heartbeat intervals that make an agent lost.
        session_patterns: Judge each agent's sessions against its cohort's learned sessions
            (``session_pattern`` warnings); off by default, as agents' workflows vary: see
            ``agentwatch.detectors._session_pattern`` for the measured trade-off.
        detector_snapshot_path: Detector state restored from here at start and written here
            at shutdown and every ``detector_snapshot_interval_s``, so baselines survive
            restarts and crashes, and the agent registry beside it (``<path>.agents.json``,
            also saved every minute: an agent that died during the restart is still found
            lost); None keeps both in memory only.
        detector_snapshot_interval_s: How often the maintenance tick also writes the detector
            snapshot, so that a crash loses at most this much learning (0: at shutdown only).
            Scoring waits while the state is pickled: about 0.9 s for 10,000 agents here.
        tls_cert_file: PEM certificate chain: with ``tls_key_file``, OTLP (HTTP and gRPC) and the
            API are served over TLS only.
        tls_key_file: PEM private key of ``tls_cert_file``.
        decode_workers: Processes that decode trace requests (0 decodes in the service process;
            1 lets ingest use a second core).
        max_spans_per_request: Larger requests are refused whole (400 / INVALID_ARGUMENT).
        max_attributes_per_span: Spans with more attributes are rejected (partial success).
        max_attribute_value_length: Spans with a longer attribute value are rejected.
    """

    data_dir: Path = Path("agentwatch-data")
    clickhouse_dsn: str | None = None
    clickhouse_cluster: str | None = None
    host: str = "127.0.0.1"
    otlp_http_port: int = 4318
    otlp_grpc_port: int = 4317
    api_port: int = 8080
    webhook_secret: str | None = None
    slack_webhook_url: str | None = None
    breaker_min_severity: str = "critical"
    breaker_policy: Mapping[str, str] = field(default_factory=dict)
    ttl_days: int = 0
    max_pending_rows: int = 200_000
    spool_max_bytes: int = 1024 * 1024 * 1024
    spool_fsync: bool = True
    max_request_bytes: int = 16 * 1024 * 1024
    max_inflight_requests: int = 64
    ingest_token: str | None = None
    api_token: str | None = None
    alerting: Mapping[str, Any] | None = None
    rollback_min_severity: str = "never"
    breaker_open_wait_s: float = 60.0
    breaker_probe_actions: int = 3
    shadow: bool = False
    heartbeat_misses: float = 3.0
    session_patterns: bool = False
    detector_snapshot_path: Path | None = None
    detector_snapshot_interval_s: float = 300.0
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    decode_workers: int = 1
    max_spans_per_request: int = 10_000
    max_attributes_per_span: int = 128
    max_attribute_value_length: int = 16_384

    def __post_init__(self) -> None:
        if not -1 <= self.otlp_grpc_port <= 65535:
            raise ConfigError(f"otlp_grpc_port must be 0..65535 or -1, got {self.otlp_grpc_port}")
        for name in ("otlp_http_port", "api_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} must be a port number 0..65535, got {port}")
        if self.rollback_min_severity not in _SEVERITIES:
            raise ConfigError(
                f"rollback_min_severity must be one of {', '.join(_SEVERITIES)}, "
                f"got {self.rollback_min_severity!r}"
            )
        if self.breaker_open_wait_s < 0:
            raise ConfigError(f"breaker_open_wait_s must be >= 0, got {self.breaker_open_wait_s}")
        if self.breaker_probe_actions < 1:
            raise ConfigError(
                f"breaker_probe_actions must be >= 1, got {self.breaker_probe_actions}"
            )
        interval = self.detector_snapshot_interval_s
        if not (
            isinstance(interval, int | float)
            and not isinstance(interval, bool)
            and 0 <= interval < math.inf
        ):
            raise ConfigError(
                "detector_snapshot_interval_s must be >= 0 (0: at shutdown only), "
                f"got {self.detector_snapshot_interval_s}"
            )
        if self.heartbeat_misses <= 1:
            raise ConfigError(f"heartbeat_misses must be > 1, got {self.heartbeat_misses}")
        if self.alerting is not None:
            if "route" not in self.alerting:
                raise ConfigError(
                    "alerting needs a route (Alertmanager's shape: route: {receiver})"
                )
            if not self.webhook_secret:
                raise ConfigError(
                    f"alerting needs {semconv.WEBHOOK_SECRET_ENV}: every notification is signed"
                )
        if self.breaker_min_severity not in _SEVERITIES:
            raise ConfigError(
                f"breaker_min_severity must be one of {', '.join(_SEVERITIES)}, "
                f"got {self.breaker_min_severity!r}"
            )
        for detector, severity in self.breaker_policy.items():
            if severity not in _SEVERITIES:
                raise ConfigError(
                    f"breaker_policy[{detector!r}] must be one of {', '.join(_SEVERITIES)}, "
                    f"got {severity!r}"
                )
        if self.ttl_days < 0:
            raise ConfigError(f"ttl_days must be >= 0, got {self.ttl_days}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError(
                "TLS needs both AGENTWATCH_TLS_CERT_FILE and AGENTWATCH_TLS_KEY_FILE, or neither"
            )
        for name in ("tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} {path} is not a readable file")
        if not 0 <= self.decode_workers <= 64:
            raise ConfigError(f"decode_workers must be 0..64, got {self.decode_workers}")
        for name in (
            "max_spans_per_request",
            "max_attributes_per_span",
            "max_attribute_value_length",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.spool_max_bytes <= 0:
            raise ConfigError(f"spool_max_bytes must be > 0, got {self.spool_max_bytes}")
        if self.clickhouse_cluster is not None:
            if not self.clickhouse_dsn:
                raise ConfigError(
                    "clickhouse_cluster needs a ClickHouse server: set AGENTWATCH_CLICKHOUSE_DSN "
                    "(--clickhouse); the embedded engine is one node"
                )
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.clickhouse_cluster):
                raise ConfigError(
                    f"clickhouse_cluster must be a cluster name, got {self.clickhouse_cluster!r}"
                )
        if self.max_inflight_requests < 1:
            raise ConfigError(
                f"max_inflight_requests must be >= 1, got {self.max_inflight_requests}"
            )
        if self.max_pending_rows <= 0:
            raise ConfigError(f"max_pending_rows must be > 0, got {self.max_pending_rows}")
        if not is_loopback(self.host):
            for name, env in (("ingest_token", "INGEST"), ("api_token", "API")):
                if not getattr(self, name):
                    raise ConfigError(
                        f"host {self.host!r} is not loopback, so {name} is required: set "
                        f"AGENTWATCH_{env}_TOKEN (clients send it as 'Authorization: Bearer ...')"
                    )
        if self.webhook_secret is not None and not self.webhook_secret.strip():
            raise ConfigError(f"{semconv.WEBHOOK_SECRET_ENV} is set but empty")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> ServiceSettings:
        """Build from a YAML file, then ``AGENTWATCH_*`` variables, then keyword overrides
        (not None); each later source wins."""
        values: dict[str, Any] = dict(load_config(config_file)) if config_file else {}
        conversions: dict[str, tuple[str, Any]] = {
            "AGENTWATCH_DATA_DIR": ("data_dir", Path),
            "AGENTWATCH_CLICKHOUSE_DSN": ("clickhouse_dsn", str),
            "AGENTWATCH_CLICKHOUSE_CLUSTER": ("clickhouse_cluster", str),
            "AGENTWATCH_HOST": ("host", str),
            "AGENTWATCH_OTLP_HTTP_PORT": ("otlp_http_port", int),
            "AGENTWATCH_OTLP_GRPC_PORT": ("otlp_grpc_port", int),
            "AGENTWATCH_API_PORT": ("api_port", int),
            semconv.WEBHOOK_SECRET_ENV: ("webhook_secret", str),
            "AGENTWATCH_SLACK_WEBHOOK_URL": ("slack_webhook_url", str),
            "AGENTWATCH_BREAKER_MIN_SEVERITY": ("breaker_min_severity", str),
            "AGENTWATCH_TTL_DAYS": ("ttl_days", int),
            "AGENTWATCH_MAX_PENDING_ROWS": ("max_pending_rows", int),
            "AGENTWATCH_SPOOL_MAX_BYTES": ("spool_max_bytes", int),
            "AGENTWATCH_MAX_INFLIGHT_REQUESTS": ("max_inflight_requests", int),
            "AGENTWATCH_DECODE_WORKERS": ("decode_workers", int),
            "AGENTWATCH_TLS_CERT_FILE": ("tls_cert_file", Path),
            "AGENTWATCH_TLS_KEY_FILE": ("tls_key_file", Path),
            "AGENTWATCH_MAX_SPANS_PER_REQUEST": ("max_spans_per_request", int),
            "AGENTWATCH_MAX_ATTRIBUTES_PER_SPAN": ("max_attributes_per_span", int),
            "AGENTWATCH_MAX_ATTRIBUTE_VALUE_LENGTH": ("max_attribute_value_length", int),
            "AGENTWATCH_INGEST_TOKEN": ("ingest_token", str),
            "AGENTWATCH_API_TOKEN": ("api_token", str),
            "AGENTWATCH_DETECTOR_SNAPSHOT_PATH": ("detector_snapshot_path", Path),
            "AGENTWATCH_DETECTOR_SNAPSHOT_INTERVAL_S": ("detector_snapshot_interval_s", float),
        }
        for variable, (name, convert) in conversions.items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise ConfigError(f"{variable}={raw!r} is invalid: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def settings_summary(settings: ServiceSettings) -> Mapping[str, Any]:
    """Settings safe to print (no secrets, no webhook URLs)."""
    return {
        "data_dir": str(settings.data_dir),
        "clickhouse": "server" if settings.clickhouse_dsn else "embedded",
        "slack": bool(settings.slack_webhook_url),
        "control_webhooks_signed": bool(settings.webhook_secret),
        "breaker_min_severity": settings.breaker_min_severity,
    }
