"""The control receiver: where the service's signed webhooks reach the agent and take effect."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from agentwatch.sdk import semconv
from agentwatch.sdk._breaker import BreakerState
from agentwatch.sdk._dispatch import Remediation, RemediationDispatcher
from agentwatch.sdk._errors import WebhookVerificationError
from agentwatch.sdk._webhooks import WebhookVerifier

logger = logging.getLogger(__name__)

CONTROL_PATH = "/control"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})

ApplyBreaker = Callable[[BreakerState, str, str], None]
"""Applies ``(state, reason, anomaly_id)`` to the agent's breaker."""


@dataclasses.dataclass(frozen=True)
class ControlResponse:
    """What the receiver answers: an HTTP status code and a small JSON object."""

    status_code: int
    body: Mapping[str, str]


def _rejected(status_code: int, reason: str) -> ControlResponse:
    return ControlResponse(status_code, {"status": "rejected", "reason": reason})


class ControlHandler:
    """Decides the answer to one control webhook and applies its effect; no I/O of its own.

    Shared by the thread server (:class:`ControlReceiver`) and the ASGI app, so both behave
    the same. A request is verified (Standard Webhooks signature and timestamp: 401 otherwise),
    answered ``200 {"status": "duplicate"}`` without effect if its webhook-id was already
    applied (so retries are idempotent), then validated (400 for malformed bodies or unknown
    types, 409 when addressed to another agent). Effects:

    - ``breaker``: sets the breaker state; ``200 {"status": "applied", "state": ...}``.
    - ``rollback`` (``checkpoint_id`` required): queued for the rollback handlers, which run
      in a worker thread; ``202 {"status": "accepted"}``; 501 when no handler is registered.
    - ``failover`` (to a standby: ``agent`` is this standby, ``failed_agent`` the lost one):
      queued for the failover handlers; ``202`` as above.

    Thread-safe; never raises, never blocks beyond short locks.

    Args:
        agent_id: This agent's instance id; webhooks for other agents are refused.
        verifier: Checks signatures and remembers applied webhook ids.
        apply_breaker: Called with ``(state, reason, anomaly_id)`` for a breaker webhook.
        dispatcher: Runs rollbacks and failovers, deduplicated by webhook-id.
        max_body_bytes: Largest accepted request body (transports answer 413 beyond).
    """

    def __init__(
        self,
        *,
        agent_id: str,
        verifier: WebhookVerifier,
        apply_breaker: ApplyBreaker,
        dispatcher: RemediationDispatcher | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.agent_id = agent_id
        self.max_body_bytes = max_body_bytes
        self._verifier = verifier
        self._apply_breaker = apply_breaker
        self._dispatcher = dispatcher if dispatcher is not None else RemediationDispatcher()

    def handle(self, headers: Mapping[str, str], body: bytes) -> ControlResponse:
        """Decide the answer to one request and apply its effect. Never raises."""
        try:
            return self._handle(headers, body)
        except Exception:
            logger.exception("control webhook handling failed")
            return _rejected(500, "internal error")

    def _handle(self, headers: Mapping[str, str], body: bytes) -> ControlResponse:
        try:
            webhook_id = self._verifier.verify(headers, body, check_replay=False)
        except WebhookVerificationError as exc:
            logger.warning("control webhook rejected: %s", exc.reason)
            return _rejected(401, exc.reason)
        if self._verifier.seen(webhook_id) or self._dispatcher.seen(webhook_id):
            return ControlResponse(200, {"status": "duplicate"})
        try:
            message: Any = json.loads(body)
        except ValueError:  # UnicodeDecodeError is a ValueError
            return _rejected(400, "body is not JSON")
        if not isinstance(message, dict):
            return _rejected(400, "body must be a JSON object")
        control_type = message.get("type")
        agent = message.get("agent")
        if not isinstance(control_type, str) or not control_type:
            return _rejected(400, "missing or invalid 'type'")
        if not isinstance(agent, str) or not agent:
            return _rejected(400, "missing or invalid 'agent'")
        if agent != self.agent_id:
            return _rejected(409, "webhook addressed to another agent")
        reason = message.get("reason") or ""
        anomaly_id = message.get("anomaly_id") or ""
        if not isinstance(reason, str) or not isinstance(anomaly_id, str):
            return _rejected(400, "'reason' and 'anomaly_id' must be strings")
        if control_type == semconv.CONTROL_TYPE_BREAKER:
            return self._breaker(webhook_id, message, reason, anomaly_id)
        if control_type in (semconv.CONTROL_TYPE_ROLLBACK, semconv.CONTROL_TYPE_FAILOVER):
            return self._remediation(webhook_id, control_type, message, reason, anomaly_id)
        return _rejected(400, "unsupported control type")

    def _breaker(
        self, webhook_id: str, message: dict[str, Any], reason: str, anomaly_id: str
    ) -> ControlResponse:
        try:
            state = BreakerState(str(message.get("state")))
        except ValueError:
            return _rejected(400, "invalid breaker 'state'")
        if not self._verifier.remember(webhook_id):
            return ControlResponse(200, {"status": "duplicate"})  # a concurrent retry won
        self._apply_breaker(state, reason, anomaly_id)
        logger.info(
            "breaker of agent %s set to %s by webhook %s", self.agent_id, state.value, webhook_id
        )
        return ControlResponse(200, {"status": "applied", "state": state.value})

    def _remediation(
        self,
        webhook_id: str,
        control_type: str,
        message: dict[str, Any],
        reason: str,
        anomaly_id: str,
    ) -> ControlResponse:
        checkpoint_id = message.get("checkpoint_id") or ""
        failed_agent = message.get("failed_agent") or ""
        if not isinstance(checkpoint_id, str) or not isinstance(failed_agent, str):
            return _rejected(400, "'checkpoint_id' and 'failed_agent' must be strings")
        if control_type == semconv.CONTROL_TYPE_ROLLBACK and not checkpoint_id:
            return _rejected(400, "missing 'checkpoint_id'")
        if control_type == semconv.CONTROL_TYPE_FAILOVER and not failed_agent:
            return _rejected(400, "missing 'failed_agent'")
        if not self._dispatcher.has_handlers(control_type):
            # Not remembered: a retry after a handler is registered can still run.
            return _rejected(501, f"no {control_type} handler registered")
        remediation = Remediation(
            kind=control_type,
            webhook_id=webhook_id,
            checkpoint_id=checkpoint_id,
            failed_agent=failed_agent,
            reason=reason,
            anomaly_id=anomaly_id,
        )
        if not self._dispatcher.submit(remediation):
            return ControlResponse(200, {"status": "duplicate"})
        self._verifier.remember(webhook_id)
        logger.info("%s of agent %s accepted (webhook %s)", control_type, self.agent_id, webhook_id)
        return ControlResponse(202, {"status": "accepted", "type": control_type})


class ControlReceiver:
    """Serves a :class:`ControlHandler` on ``POST /control`` from a small thread server.

    Bodies above the handler's ``max_body_bytes`` get 413; other paths 404.

    Thread-safe. The server runs in a daemon thread, one short-lived thread per request.

    Args:
        handler: Decides answers and applies effects.
        host: Address to bind.
        port: Port to bind; 0 picks a free one.
        poll_interval_s: How often the serving loop checks for shutdown (bounds its latency).

    Raises:
        OSError: The address cannot be bound.
    """

    def __init__(
        self,
        handler: ControlHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_interval_s: float = 0.1,
    ) -> None:
        self.handler = handler
        self._poll_interval_s = poll_interval_s
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        bound_port = self._server.server_address[1]
        url_host = socket.gethostname() if host in _WILDCARD_HOSTS else host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.url = f"http://{url_host}:{bound_port}{CONTROL_PATH}"

    @property
    def max_body_bytes(self) -> int:
        """Largest accepted request body."""
        return self.handler.max_body_bytes

    def start(self) -> None:
        """Start serving in a daemon thread. Call once."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self._poll_interval_s},
            name="agentwatch-control",
            daemon=True,
        )
        self._thread.start()

    def shutdown(self) -> None:
        """Stop serving and close the socket. Blocks up to about ``poll_interval_s``; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def handle(self, headers: Mapping[str, str], body: bytes) -> ControlResponse:
        """Answer one request (see :meth:`ControlHandler.handle`). Never raises."""
        return self.handler.handle(headers, body)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    # TCPServer rather than http.server.HTTPServer: the latter resolves the host's FQDN on
    # bind, a DNS lookup that can stall an agent's start-up.
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: ControlReceiver) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.receiver = receiver
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("control connection from %s failed", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10.0  # a stalled client must not hold a thread forever
    server_version = "agentwatch-sdk"

    def do_POST(self) -> None:
        receiver = self.server.receiver
        if urllib.parse.urlsplit(self.path).path != CONTROL_PATH:
            self._respond(_rejected(404, "not found"))
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self._respond(_rejected(411, "Content-Length required"))
            return
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self._respond(_rejected(400, "invalid Content-Length"))
            return
        if length > receiver.max_body_bytes:
            self.close_connection = True
            self._respond(_rejected(413, "body too large"))
            return
        body = self.rfile.read(length)
        headers = {name: value for name, value in self.headers.items()}
        self._respond(receiver.handle(headers, body))

    def _respond(self, response: ControlResponse) -> None:
        payload = json.dumps(dict(response.body)).encode()
        self.send_response(response.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control %s - " + format, self.address_string(), *args)
