"""OTLP/gRPC receiver (port 4317): trace, logs and metrics services, on OTLP/HTTP's ingest path.

Requests are taken as raw bytes and parsed here, so undecodable input is answered with
``INVALID_ARGUMENT`` and a reason (grpcio's own deserializer would answer ``INTERNAL``).
Backpressure is ``UNAVAILABLE`` with a ``RetryInfo``: both in ``grpc-status-details-bin`` (as
the OpenTelemetry Collector reads it) and in ``google.rpc.retryinfo-bin`` (as the Python
exporter reads it).
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from ._http import (
    LOGS,
    METRICS,
    PROTOBUF,
    RETRY_AFTER_S,
    TRACES,
    OtlpSignal,
    bearer_ok,
    parse_here,
)
from ._otlp import LimitExceeded, OtlpDecodeError
from ._service import Service

logger = logging.getLogger(__name__)

_SERVICES = {
    TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
    METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
}
TRACE_EXPORT = f"/{_SERVICES[TRACES]}/Export"
LOGS_EXPORT = f"/{_SERVICES[LOGS]}/Export"
METRICS_EXPORT = f"/{_SERVICES[METRICS]}/Export"


def _identity(data: bytes) -> bytes:
    return data


def _unavailable(context: grpc.ServicerContext, message: str) -> None:
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_S))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(retry)
    context.set_trailing_metadata(
        (
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        )
    )
    context.set_code(grpc.StatusCode.UNAVAILABLE)
    context.set_details(message)


class GrpcReceiver:
    """An OTLP/gRPC server bound in the constructor (``port`` is known before ``start``).

    Args:
        service: Where spans go.
        host: Address to bind.
        port: Port (0 picks a free one).
        max_workers: Request threads.
    """

    def __init__(self, service: Service, host: str, port: int, *, max_workers: int = 4) -> None:
        self.service = service
        limit = service.settings.max_request_bytes
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-grpc"),
            options=(
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),
            ),
        )
        self._server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    name,
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            self._exporter(signal),
                            request_deserializer=_identity,
                            response_serializer=lambda message: message.SerializeToString(),
                        )
                    },
                )
                for signal, name in _SERVICES.items()
            )
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        settings = service.settings
        if settings.tls_cert_file and settings.tls_key_file:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())]
            )
            self.port = self._server.add_secure_port(address, credentials)
        else:
            self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address} for OTLP/gRPC; pick another port")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait(grace_s)

    def _exporter(self, signal: OtlpSignal) -> Any:
        def export(body: bytes, context: grpc.ServicerContext) -> Any:
            return self._export(signal, body, context)

        return export

    def _export(self, signal: OtlpSignal, body: bytes, context: grpc.ServicerContext) -> Any:
        metrics = self.service.metrics
        metadata = dict(context.invocation_metadata())
        if not bearer_ok(metadata.get("authorization"), self.service.settings.ingest_token):
            metrics.requests_rejected.labels(reason="unauthenticated").inc()
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            request = parse_here(self.service, signal, body, PROTOBUF)
        except OtlpDecodeError as exc:
            metrics.requests_rejected.labels(reason="malformed").inc()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            outcome = signal.accept(self.service, request, body, PROTOBUF)
        except LimitExceeded as exc:
            metrics.requests_rejected.labels(reason=exc.reason).inc()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not outcome.stored:
            _unavailable(
                context,
                outcome.unavailable or "agentwatch is backed up writing to ClickHouse; retry later",
            )
            return signal.response()
        return signal.response_for(outcome)
