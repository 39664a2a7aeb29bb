"""REST endpoints for acting on the fleet: breakers, silences, alerts, incidents.

Mounted on the API app (behind its bearer token). Inputs are validated by pydantic models and
mapped to 400/404 with reasons; nothing here talks to ClickHouse.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from agentwatch.alerts import SilenceError

from ._service import Service


class ForceOpen(BaseModel):
    reason: str = Field("forced open by operator", max_length=1000)


class Close(BaseModel):
    reason: str = Field("closed by operator", max_length=1000)


class NewSilence(BaseModel):
    matchers: list[str] = Field(
        ..., min_length=1, max_length=50, description='Alertmanager matchers, e.g. agent="a-1"'
    )
    ends_at: datetime = Field(..., description="RFC 3339 end time, with a time zone")
    starts_at: datetime | None = Field(None, description="RFC 3339 start time (default: now)")
    created_by: str = Field("", max_length=200)
    comment: str = Field("", max_length=2000)


def _ns(moment: datetime, field: str) -> int:
    if moment.tzinfo is None:
        raise HTTPException(400, f"{field} must carry a time zone, e.g. a trailing Z")
    return int(moment.timestamp() * 1e9)


def control_router(service: Service) -> APIRouter:
    """Breakers (list, force-open, close), silences (list, create, expire), alerts, incidents."""
    router = APIRouter(prefix="/api/v1")
    response = service.response

    @router.get("/breakers")
    def breakers() -> list[dict[str, Any]]:
        return response.breakers.to_dicts()

    @router.post("/breakers/{agent}/force-open")
    def force_open(agent: str, body: ForceOpen) -> dict[str, Any]:
        """The kill switch: FORCED_OPEN until closed by hand."""
        service.remediator.force_open(agent, body.reason)
        return dataclasses.asdict(response.breakers.status(agent))

    @router.post("/breakers/{agent}/close")
    def close(agent: str, body: Close | None = None) -> dict[str, Any]:
        service.remediator.close(agent, body.reason if body else "closed by operator")
        return dataclasses.asdict(response.breakers.status(agent))

    @router.get("/alerts")
    def alerts() -> list[dict[str, Any]]:
        return response.alerts.alerts() if response.alerts is not None else []

    def _silences() -> Any:
        if response.alerts is None:
            raise HTTPException(404, "alerting is not configured: add an alerting: section")
        return response.alerts.silences

    @router.get("/silences", responses={404: {"description": "Alerting is not configured"}})
    def silences(
        state: Literal["pending", "active", "expired"] | None = None,
    ) -> list[dict[str, Any]]:
        now = service.clock()
        return [s.to_dict(now) for s in _silences().list(state)]

    @router.post("/silences", status_code=201)
    def create_silence(body: NewSilence) -> dict[str, Any]:
        try:
            silence = _silences().create(
                body.matchers,
                ends_at_ns=_ns(body.ends_at, "ends_at"),
                starts_at_ns=_ns(body.starts_at, "starts_at") if body.starts_at else None,
                created_by=body.created_by,
                comment=body.comment,
            )
        except (SilenceError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from exc
        return dict(silence.to_dict(service.clock()))

    @router.delete("/silences/{silence_id}")
    def expire_silence(silence_id: str) -> dict[str, Any]:
        store = _silences()
        if store.get(silence_id) is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        try:
            silence = store.expire(silence_id)
        except SilenceError as exc:
            raise HTTPException(400, str(exc)) from exc
        return dict(silence.to_dict(service.clock()))

    @router.get("/detectors/snapshot", response_class=Response)
    def export_snapshot(agents: str | None = None) -> Response:
        """Learned detector state (comma-separated ``agents``, default all), for a hand-off."""
        wanted = {a for a in agents.split(",") if a} if agents else None
        return Response(service.snapshot_detectors(wanted), media_type="application/octet-stream")

    @router.post("/detectors/snapshot")
    async def import_snapshot(request: Request, merge: bool = True) -> dict[str, int]:
        """Load a snapshot exported by another replica (admin token required)."""
        try:
            restored = service.restore_detectors(await request.body(), merge=merge)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"agents": restored}

    @router.get("/incidents")
    def incidents() -> list[dict[str, Any]]:
        return [dataclasses.asdict(i) for i in service.remediator.incidents.list()]

    return router
