"""The control receiver as a plain ASGI 3 application, to mount in FastAPI or Starlette.

No framework is imported: the app speaks the ASGI HTTP protocol directly, so mounting it
(``app.mount("/agentwatch", agent.asgi_app())``) adds no dependency to the agent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from agentwatch.sdk._control import ControlHandler, ControlResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def control_asgi_app(handler: ControlHandler) -> ASGIApp:
    """Return an ASGI app answering control webhooks with ``handler``.

    It accepts ``POST`` on the path it is mounted at (and on ``.../control`` below it), with
    the same answers as the thread server: 405 for other methods, 413 for bodies above
    ``handler.max_body_bytes``, 404 for other paths. Lifespan events are acknowledged.
    The handler runs in the event loop; it only verifies, parses and queues (rollback and
    failover handlers run in the SDK's worker thread), so it never blocks the loop for long.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = _relative_path(scope)
        if path not in ("", "/", "/control", "/control/"):
            await _respond(
                send, ControlResponse(404, {"status": "rejected", "reason": "not found"})
            )
            return
        if scope.get("method") != "POST":
            await _respond(
                send,
                ControlResponse(405, {"status": "rejected", "reason": "method not allowed"}),
                extra_headers=[(b"allow", b"POST")],
            )
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        body = await _read_body(receive, handler.max_body_bytes)
        if body is None:
            too_large = ControlResponse(413, {"status": "rejected", "reason": "body too large"})
            await _respond(send, too_large)
            return
        await _respond(send, handler.handle(headers, body))

    return app


def _relative_path(scope: Scope) -> str:
    # Starlette's Mount keeps the full path and sets root_path; other servers strip it.
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send,
    response: ControlResponse,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(dict(response.body)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
