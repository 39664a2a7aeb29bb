"""HTTP front ends: the OTLP/HTTP ingest app, and the servers running it and the REST API
(``_api``), each on its own port.

OTLP/HTTP follows the specification for ``/v1/traces``, ``/v1/logs`` and ``/v1/metrics``:
protobuf or JSON bodies, optional gzip, the response in the request's content type, 400 with a
``google.rpc.Status`` for undecodable input, 200 with ``partial_success`` when some spans, log
records or data points were invalid, 429 with Retry-After when storage is backed up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hmac
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from ._decode_pool import DecoderUnavailable, decode_here
from ._otlp import LimitExceeded, OtlpDecodeError, decode_request
from ._otlp_logs import logs_request_to_rows
from ._otlp_metrics import metrics_request_to_rows, split_by_table
from ._records import JSON_RECORD, PROTOBUF_RECORD
from ._schema_signals import LOGS_TABLE
from ._service import Service
from ._signals import LOGS_RECORD, METRICS_RECORD

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = 2


def _encode(message: Any, media: str) -> bytes:
    if media == JSON:
        return str(json_format.MessageToJson(message, indent=None)).encode()
    return bytes(message.SerializeToString())


def _status(code: int, message: str, media: str, http_status: int, **headers: str) -> Response:
    body = _encode(status_pb2.Status(code=code, message=message), media)
    return Response(body, status_code=http_status, media_type=media, headers=headers)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """gzip/deflate with a cap on the decompressed size (a gzip-bomb guard)."""
    if encoding in ("", "identity"):
        data = body
    elif encoding == "gzip":
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        data = decompressor.decompress(body, limit + 1)
        if decompressor.unconsumed_tail:
            raise _TooLarge
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
        data = decompressor.decompress(body, limit + 1)
        if decompressor.unconsumed_tail:
            raise _TooLarge
    else:
        raise OtlpDecodeError(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    if len(data) > limit:
        raise _TooLarge
    return data


class _TooLarge(Exception):
    pass


def _reply_media(headers: Any) -> str:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return JSON if media == JSON else PROTOBUF


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body as sent, or None once it exceeds ``limit`` bytes (the rest is not read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def bearer_ok(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries the token (always true when none is set)."""
    if not token:
        return True
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one decoded export request.

    Attributes:
        stored: False when nothing was accepted and the client should retry (429/UNAVAILABLE):
            the spool budget is spent, or ``unavailable`` says why else.
        rejected: Items (spans, log records, data points) refused as invalid.
        errors: Up to five reasons for the rejections.
        unavailable: Why a retry is asked for, when not the spool budget.
    """

    stored: bool
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    unavailable: str = ""


@dataclass(frozen=True, slots=True)
class OtlpSignal:
    """One OTLP signal's wire types and how a decoded request is accepted.

    ``accept(service, request, body, media)`` gets the decompressed body and its media type,
    so a record can keep the body as sent.
    """

    name: str
    request: type[Any]
    response: type[Any]
    rejected_field: str
    accept: Callable[[Service, Any, bytes, str], Outcome]

    def response_for(self, outcome: Outcome) -> Any:
        response = self.response()
        if outcome.rejected:
            setattr(response.partial_success, self.rejected_field, outcome.rejected)
            response.partial_success.error_message = "; ".join(outcome.errors)
        return response


def parse_here(service: Service, signal: OtlpSignal, body: bytes, media: str) -> Any:
    """The parsed request, or None for traces when a decoder process parses them anyway (its
    verdict on a bad body comes back as a 400 with the same reason)."""
    if signal is TRACES and service.decoders is not None:
        return None
    return decode_request(body, media, signal.request)


def _accept_traces(service: Service, request: Any, body: bytes, media: str) -> Outcome:
    if service.decoders is not None:  # block and events made in a decoder process
        try:
            decoded, observations = service.decoders.decode(body, media)
        except DecoderUnavailable as exc:
            return Outcome(stored=False, unavailable=str(exc))
    else:
        decoded, observations = decode_here(request, service.limits, service.span_encoder)
    record = (JSON_RECORD if media == JSON else PROTOBUF_RECORD) + body
    if decoded.block.rows and not service.ingest(decoded.block, record, observations):
        return Outcome(stored=False)
    if decoded.rejected:
        service.count("spans_rejected", decoded.rejected)
        for reason, n in decoded.reasons.items():
            service.metrics.spans_rejected.labels(reason=reason).inc(n)
    return Outcome(True, decoded.rejected, decoded.errors)


def _accept_logs(service: Service, request: Any, body: bytes, media: str) -> Outcome:
    decoded = logs_request_to_rows(request)
    if decoded.rows:
        payload = body if media == PROTOBUF else request.SerializeToString()
        parts = {LOGS_TABLE: (decoded.rows, LOGS_RECORD + payload)}
        if not service.ingest_signal("log_records", parts):
            return Outcome(stored=False)
    if decoded.rejected:
        service.count("log_records_rejected", decoded.rejected)
    return Outcome(True, decoded.rejected, decoded.errors)


def _accept_metrics(service: Service, request: Any, body: bytes, media: str) -> Outcome:
    decoded = metrics_request_to_rows(request)
    if decoded.rows:
        requests = split_by_table(request)
        parts = {
            table: (rows, METRICS_RECORD + requests[table].SerializeToString())
            for table, rows in decoded.rows.items()
        }
        if not service.ingest_signal("data_points", parts):
            return Outcome(stored=False)
    if decoded.rejected:
        service.count("data_points_rejected", decoded.rejected)
    return Outcome(True, decoded.rejected, decoded.errors)


TRACES = OtlpSignal(
    "traces",
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    "rejected_spans",
    _accept_traces,
)
LOGS = OtlpSignal(
    "logs",
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    "rejected_log_records",
    _accept_logs,
)
METRICS = OtlpSignal(
    "metrics",
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    "rejected_data_points",
    _accept_metrics,
)
SIGNALS = (TRACES, LOGS, METRICS)


def otlp_app(service: Service) -> FastAPI:
    """The OTLP/HTTP receiver (``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics``)."""
    app = FastAPI(title="agentwatch OTLP/HTTP receiver", docs_url=None, redoc_url=None)
    limit = service.settings.max_request_bytes
    token = service.settings.ingest_token
    rejected = service.metrics.requests_rejected

    max_inflight = service.settings.max_inflight_requests
    inflight = 0  # requests being read or handled; only the event loop's thread touches it
    service.metrics.requests_in_flight.set_function(lambda: inflight)  # read when scraped

    def route(signal: OtlpSignal) -> None:
        async def receive(request: Request) -> Response:
            nonlocal inflight
            if inflight >= max_inflight:
                rejected.labels(reason="overloaded").inc()
                return _status(
                    code_pb2.UNAVAILABLE,
                    f"{max_inflight} requests are in flight already; retry later",
                    _reply_media(request.headers),
                    429,
                    **{"Retry-After": str(RETRY_AFTER_S)},
                )
            inflight += 1
            try:
                raw = await _read_body(request, limit)
                if raw is None:
                    rejected.labels(reason="too_large").inc()
                    return _status(
                        code_pb2.INVALID_ARGUMENT,
                        f"request body exceeds {limit} bytes; send smaller batches",
                        _reply_media(request.headers),
                        413,
                    )
                # Decoding and the spool's fsync block: keep them off the event loop.
                return await run_in_threadpool(export, signal, raw, request.headers)
            finally:
                inflight -= 1

        app.add_api_route(f"/v1/{signal.name}", receive, methods=["POST"], name=signal.name)

    for signal in SIGNALS:
        route(signal)

    def export(signal: OtlpSignal, raw: bytes, headers: Any) -> Response:
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        reply_media = _reply_media(headers)
        if not bearer_ok(headers.get("authorization"), token):
            rejected.labels(reason="unauthenticated").inc()
            return _status(
                code_pb2.UNAUTHENTICATED,
                "missing or wrong bearer token: send 'Authorization: Bearer <ingest token>'",
                reply_media,
                401,
            )
        if media not in (JSON, PROTOBUF):
            rejected.labels(reason="content_type").inc()
            return _status(
                code_pb2.INVALID_ARGUMENT,
                f"unsupported Content-Type {media!r}: use {PROTOBUF} or {JSON}",
                reply_media,
                415,
            )
        try:
            body = _decompress(raw, headers.get("content-encoding", "").lower(), limit)
            request = parse_here(service, signal, body, media)
        except _TooLarge:
            rejected.labels(reason="too_large").inc()
            return _status(
                code_pb2.INVALID_ARGUMENT,
                f"request body exceeds {limit} bytes after decompression; send smaller batches",
                reply_media,
                413,
            )
        except (OtlpDecodeError, zlib.error, gzip.BadGzipFile, EOFError) as exc:
            rejected.labels(reason="malformed").inc()
            return _status(code_pb2.INVALID_ARGUMENT, str(exc), reply_media, 400)
        try:
            outcome = signal.accept(service, request, body, media)
        except LimitExceeded as exc:
            rejected.labels(reason=exc.reason).inc()
            return _status(code_pb2.INVALID_ARGUMENT, str(exc), reply_media, 400)
        if not outcome.stored:
            return _status(
                code_pb2.UNAVAILABLE,
                outcome.unavailable
                or "agentwatch's spool is full (ClickHouse is behind or down); retry later",
                reply_media,
                429,
                **{"Retry-After": str(RETRY_AFTER_S)},
            )
        return Response(_encode(signal.response_for(outcome), reply_media), media_type=reply_media)

    return app


class HttpServers:
    """Runs ASGI apps on their own loopback-or-configured ports in one background thread.

    Sockets are bound in the constructor, so ``ports`` is known (port 0 picks a free one)
    before ``start``; ``start`` returns once every server accepts connections.
    """

    def __init__(
        self, apps: dict[str, tuple[Any, str, int]], *, tls: tuple[Path, Path] | None = None
    ) -> None:
        self._servers: dict[str, tuple[uvicorn.Server, socket.socket]] = {}
        self.ports: dict[str, int] = {}
        for name, (app, host, port) in apps.items():
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                raise OSError(
                    f"cannot listen on {host}:{port} for {name}: {exc.strerror}; pick another port"
                ) from exc
            config = uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                access_log=False,
                ssl_certfile=str(tls[0]) if tls else None,
                ssl_keyfile=str(tls[1]) if tls else None,
            )
            self._servers[name] = (uvicorn.Server(config), sock)
            self.ports[name] = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            await asyncio.gather(
                *(server.serve(sockets=[sock]) for server, sock in self._servers.values())
            )

        asyncio.run(main())

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not all(server.started for server, _ in self._servers.values()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("HTTP servers did not start")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        for server, _ in self._servers.values():
            server.should_exit = True
        self._thread.join(timeout_s)
        for _, sock in self._servers.values():
            with contextlib.suppress(OSError):
                sock.close()
