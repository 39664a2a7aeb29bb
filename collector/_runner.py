"""Start and stop a whole agentwatch process: the service plus its HTTP front ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from ._api import api_app
from ._grpc import GrpcReceiver
from ._http import HttpServers, otlp_app
from ._service import Service
from ._settings import ServiceSettings
from ._storage import Storage


class RunningService:
    """A started service with its OTLP/HTTP and API ports listening.

    Use as a context manager, or call ``stop``. ``otlp_endpoint`` is the base URL to give an
    OTLP exporter (``/v1/traces`` is appended by exporters); ``api_url`` the REST API's base.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Callable[[], int] = time.time_ns,
        storage: Storage | None = None,
    ) -> None:
        self.settings = settings
        self.service = Service(settings, clock=clock, storage=storage)
        try:
            self.http = HttpServers(
                {
                    "otlp": (otlp_app(self.service), settings.host, settings.otlp_http_port),
                    "api": (api_app(self.service), settings.host, settings.api_port),
                },
                tls=(settings.tls_cert_file, settings.tls_key_file)
                if settings.tls_cert_file and settings.tls_key_file
                else None,
            )
            self.grpc = (
                GrpcReceiver(self.service, settings.host, settings.otlp_grpc_port)
                if settings.otlp_grpc_port >= 0
                else None
            )
        except OSError:
            self.service.shutdown()
            raise
        self.service.start()
        self.http.start()
        if self.grpc is not None:
            self.grpc.start()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        scheme = "https" if settings.tls_cert_file else "http"
        self.otlp_endpoint = f"{scheme}://{host}:{self.http.ports['otlp']}"
        self.otlp_grpc_endpoint = f"{host}:{self.grpc.port}" if self.grpc else None
        self.api_url = f"{scheme}://{host}:{self.http.ports['api']}"

    def stop(self) -> None:
        """Stop accepting, then drain detection, deliveries and writes."""
        self.http.stop()
        if self.grpc is not None:
            self.grpc.stop()
        self.service.shutdown()

    def __enter__(self) -> RunningService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
