"""Optional TLS: OTLP/HTTP, OTLP/gRPC and the API answer only over TLS when a certificate is set."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentwatch.collector import ConfigError, RunningService, ServiceSettings
from agentwatch.collector._grpc import TRACE_EXPORT
from tests.support import local_settings

pytestmark = pytest.mark.integration


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_every_port_speaks_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = local_settings(tmp_path / "d", tls_cert_file=cert, tls_key_file=key)
    with RunningService(settings) as running:
        assert running.otlp_endpoint.startswith("https://")
        request = ExportTraceServiceRequest()
        request.resource_spans.add().scope_spans.add().spans.add(
            trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="over tls"
        )
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
            response = client.post(
                f"{running.otlp_endpoint}/v1/traces",
                content=request.SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
            )
            assert response.status_code == 200
            assert client.get(f"{running.api_url}/healthz").status_code == 200
        plain = running.otlp_endpoint.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"{plain}/v1/traces", content=b"", timeout=5)
        assert running.otlp_grpc_endpoint
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(running.otlp_grpc_endpoint, credentials) as channel:
            channel.unary_unary(TRACE_EXPORT)(request.SerializeToString(), timeout=10)
        assert running.service.flush(10)
        _, rows = running.service.storage.query("SELECT count() FROM otel_traces")
        assert rows == [(2,)]


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(ConfigError, match="both"):
        ServiceSettings(tls_cert_file=cert)
    with pytest.raises(ConfigError, match="not a readable file"):
        ServiceSettings(tls_cert_file=cert, tls_key_file=tmp_path / "missing.pem")
