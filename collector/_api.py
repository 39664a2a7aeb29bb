"""The REST API app: anomalies, agents, control state, health, Prometheus metrics, and the
routers of the control plane, operations and the status page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from ._control_api import control_router
from ._http import bearer_ok
from ._metrics import CONTENT_TYPE_LATEST
from ._ops_api import local_request_guard, ops_router
from ._service import Service
from ._ui import ui_router


def _parse_since(since: datetime | None) -> int:
    if since is None:
        return 0
    if since.tzinfo is None:
        raise HTTPException(400, "since must carry a time zone, e.g. a trailing Z")
    return int(since.timestamp() * 1e9)


def api_app(service: Service) -> FastAPI:
    """The REST API: anomalies, agents, control state, health, Prometheus metrics."""
    # Without a token the API is loopback-only: refuse forged Host/Origin (DNS rebinding, CSRF).
    app = FastAPI(
        title="agentwatch API",
        version="0.1.0",
        dependencies=[Depends(local_request_guard(service))],
    )
    token = service.settings.api_token

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/api/") and not bearer_ok(
            request.headers.get("authorization"), token
        ):
            return JSONResponse(
                {"detail": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response: Response = await call_next(request)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/api/v1/agents/{agent}/control",
        responses={404: {"description": "Unknown agent: it has sent no spans yet"}},
    )
    def control(agent: str) -> dict[str, Any]:
        """What the agent should obey now: its SDK polls this when webhooks cannot reach it."""
        state = service.control_state(agent)
        if state is None:
            raise HTTPException(404, f"unknown agent {agent!r}: it has sent no spans yet")
        return state

    @app.get(
        "/api/v1/anomalies",
        responses={400: {"description": "since is not an RFC 3339 time with a zone"}},
    )
    def anomalies(
        since: Annotated[
            datetime | None, Query(description="RFC 3339 time with a zone; detected since")
        ] = None,
        agent: str | None = Query(None, description="Only this agent instance id"),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> list[dict[str, Any]]:
        return service.anomalies(since_ns=_parse_since(since), agent=agent, limit=limit)

    @app.get("/api/v1/agents")
    def agents() -> list[dict[str, Any]]:
        out = []
        for info in service.registry.all():
            item = info.to_json()
            item["breaker"] = service.response.breakers.state(info.agent)
            out.append(item)
        return out

    app.include_router(control_router(service))
    app.include_router(ops_router(service))
    app.include_router(ui_router(service))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            service.storage.query("SELECT 1")
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/api/v1/stats")
    def stats() -> dict[str, Any]:
        return {
            **service.counters,
            "agents": len(service.registry),
            "pending_rows": service.span_writer.pending_rows,
            "spool_bytes": service.spool.size_bytes,
            "spool_pending_records": service.span_writer.pending_records,
            "spool_replayed_records": service.span_writer.replayed_records,
            "spool_skipped_records": service.span_writer.skipped_records,
        }

    return app
