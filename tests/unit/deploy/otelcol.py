"""A small OpenTelemetry Collector config checker: known components, their keys, the pipelines.

Covers what deploy/ uses (the contrib distribution's ``otlp`` receiver, ``memory_limiter`` and
``batch`` processors, ``loadbalancing`` exporter, ``health_check`` extension), with the keys of
their config schemas (``config.schema.yaml`` / ``config.go`` in opentelemetry-collector(-contrib)).
A key or component outside these tables is reported, so a typo fails CI instead of the rollout.
"""

from __future__ import annotations

from typing import Any

# Keys of the exporterhelper settings the OTLP exporter template accepts.
_OTLP_EXPORTER = {
    "endpoint": None,
    "timeout": None,
    "compression": None,
    "headers": None,
    "tls": {"insecure": None, "insecure_skip_verify": None, "ca_file": None, "cert_file": None,
            "key_file": None, "server_name_override": None},
    "sending_queue": {"enabled": None, "num_consumers": None, "queue_size": None, "storage": None,
                      "sizer": None, "block_on_overflow": None},
    "retry_on_failure": {"enabled": None, "initial_interval": None, "max_interval": None,
                         "max_elapsed_time": None, "multiplier": None,
                         "randomization_factor": None},
    "balancer_name": None,
    "auth": None,
    "keepalive": None,
    "write_buffer_size": None,
    "read_buffer_size": None,
    "wait_for_ready": None,
}  # fmt: skip
_SERVER = {"endpoint": None, "tls": None, "auth": None, "max_recv_msg_size_mib": None,
           "keepalive": None, "cors": None, "include_metadata": None, "traces_url_path": None,
           "max_concurrent_streams": None}  # fmt: skip

RECEIVERS: dict[str, Any] = {
    "otlp": {"protocols": {"grpc": _SERVER, "http": _SERVER}},
}
PROCESSORS: dict[str, Any] = {
    "batch": {"send_batch_size": None, "send_batch_max_size": None, "timeout": None,
              "metadata_keys": None, "metadata_cardinality_limit": None},
    "memory_limiter": {"check_interval": None, "limit_mib": None, "spike_limit_mib": None,
                       "limit_percentage": None, "spike_limit_percentage": None},
}  # fmt: skip
ROUTING_KEYS = ("service", "traceID", "resource", "metric", "streamID", "attributes")
EXPORTERS: dict[str, Any] = {
    "loadbalancing": {
        "routing_key": None,
        "routing_attributes": None,
        "protocol": {"otlp": {k: v for k, v in _OTLP_EXPORTER.items() if k != "endpoint"}},
        "resolver": {
            "static": {"hostnames": None},
            "dns": {"hostname": None, "port": None, "interval": None, "timeout": None},
            "k8s": {"service": None, "ports": None, "timeout": None, "return_hostnames": None},
            "aws_cloud_map": {"namespace": None, "service_name": None, "port": None,
                              "health_status": None, "interval": None, "timeout": None},
        },
        "timeout": None,
        "sending_queue": _OTLP_EXPORTER["sending_queue"],
        "retry_on_failure": _OTLP_EXPORTER["retry_on_failure"],
    },
    "otlp": _OTLP_EXPORTER,
}  # fmt: skip
EXTENSIONS: dict[str, Any] = {"health_check": {"endpoint": None, "path": None}}
SECTIONS = {
    "receivers": RECEIVERS,
    "processors": PROCESSORS,
    "exporters": EXPORTERS,
    "extensions": EXTENSIONS,
}


def _keys(where: str, value: Any, known: Any) -> list[str]:
    if known is None or value is None:
        return []
    if not isinstance(value, dict):
        return [f"{where}: expected a mapping"]
    errors = []
    for key, sub in value.items():
        if key not in known:
            errors.append(f"{where}.{key}: unknown key")
        else:
            errors.extend(_keys(f"{where}.{key}", sub, known[key]))
    return errors


def validate(config: dict[str, Any]) -> list[str]:
    """Problems in a Collector config (empty when none)."""
    errors = [
        f"{key}: unknown top-level section"
        for key in config
        if key not in {*SECTIONS, "service", "connectors"}
    ]
    declared: dict[str, set[str]] = {}
    for section, known in SECTIONS.items():
        declared[section] = set()
        for name, body in (config.get(section) or {}).items():
            kind = name.split("/", 1)[0]
            declared[section].add(name)
            if kind not in known:
                errors.append(f"{section}.{name}: unknown component {kind!r}")
                continue
            errors.extend(_keys(f"{section}.{name}", body, known[kind]))
    for name, body in (config.get("exporters") or {}).items():
        if name.split("/", 1)[0] == "loadbalancing" and isinstance(body, dict):
            key = body.get("routing_key", "traceID")
            if key not in ROUTING_KEYS:
                errors.append(f"exporters.{name}.routing_key: {key!r} not in {ROUTING_KEYS}")
            resolvers = body.get("resolver") or {}
            if len(resolvers) != 1:
                errors.append(
                    f"exporters.{name}.resolver: exactly one resolver, got {len(resolvers)}"
                )
            if "endpoint" in ((body.get("protocol") or {}).get("otlp") or {}):
                errors.append(f"exporters.{name}: the resolver sets the endpoint")
    service = config.get("service") or {}
    for name in service.get("extensions") or []:
        if name not in declared["extensions"]:
            errors.append(f"service.extensions: {name} is not declared")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        errors.append("service.pipelines: none")
    for pipeline, body in pipelines.items():
        if pipeline.split("/", 1)[0] not in {"traces", "metrics", "logs"}:
            errors.append(f"service.pipelines.{pipeline}: unknown signal")
        for section in ("receivers", "processors", "exporters"):
            for name in body.get(section) or []:
                if name not in declared[section]:
                    errors.append(f"service.pipelines.{pipeline}.{section}: {name} is not declared")
        if not body.get("receivers") or not body.get("exporters"):
            errors.append(f"service.pipelines.{pipeline}: needs receivers and exporters")
    return errors
