"""Operator endpoints: read-only SQL, and the fleet and per-agent views the status page polls.

Mounted on the API app next to ``_http``'s routes (``app.include_router(ops_router(service))``),
so the API's bearer-token middleware guards them like every other ``/api/*`` path.

* ``POST /api/v1/query`` runs one statement with ClickHouse's ``readonly`` setting, at most
  ``max_rows`` rows (ClickHouse stops early), ``MAX_EXECUTION_TIME_S`` and ``MAX_RESPONSE_BYTES``.
* ``GET /api/v1/fleet``: every agent with status, liveness, last heartbeat, breaker and recent
  anomalies, plus the fleet's recent anomalies.
* ``GET /api/v1/agents/{agent}/activity``: an agent's action rate, tool mix and anomalies.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agentwatch.sdk import semconv

from ._query import (
    DEFAULT_MAX_ROWS,
    QueryError,
    jsonable,
    run_readonly,
)
from ._schema import TRACES_TABLE
from ._service import Service
from ._settings import is_loopback
from ._storage import StorageError

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
RECENT_S = 3600
# An agent is late after 1.5 heartbeat intervals without one, lost after 3.
LATE_INTERVALS, LOST_INTERVALS = 1.5, 3.0
DEFAULT_HEARTBEAT_S = 10.0

# The agent key of DESIGN.md's telemetry contract, as SQL over otel_traces.
AGENT_KEY_SQL = (
    f"multiIf(ResourceAttributes['{semconv.SERVICE_INSTANCE_ID}'] != '',"
    f" ResourceAttributes['{semconv.SERVICE_INSTANCE_ID}'],"
    f" ResourceAttributes['{semconv.GEN_AI_AGENT_ID}'] != '',"
    f" ResourceAttributes['{semconv.GEN_AI_AGENT_ID}'], ServiceName)"
)

ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ParamValue = Annotated[str, StringConstraints(max_length=10_000)] | int | float | bool


class QueryRequest(BaseModel):
    """One read-only statement and its ``{name:Type}`` parameters."""

    model_config = ConfigDict(extra="forbid")
    sql: str = Field(min_length=1, max_length=100_000, description="one ClickHouse statement")
    parameters: dict[ParamName, ParamValue] = Field(default_factory=dict, max_length=100)
    max_rows: int = Field(DEFAULT_MAX_ROWS, ge=1, le=100_000)


class QueryResponse(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="more rows (or bytes) than allowed; the rest was cut")


class FleetAgent(BaseModel):
    agent: str
    service: str
    status: str = Field(description="the last heartbeat's agentwatch.agent.status")
    liveness: str = Field(description="alive, late, lost or no_heartbeat")
    last_heartbeat_at: str | None
    heartbeat_age_s: float | None
    heartbeat_interval_s: float
    last_seen_at: str
    breaker: str
    spans: int
    anomalies: int = Field(description="anomalies in the last hour")


class FleetSummary(BaseModel):
    agents: int
    alive: int
    lost: int
    breakers_open: int
    anomalies: int


class FleetView(BaseModel):
    generated_at: str
    summary: FleetSummary
    agents: list[FleetAgent]
    anomalies: list[dict[str, Any]] = Field(description="the last hour's, newest first (50)")


class ActivityPoint(BaseModel):
    t: str
    actions: int
    errors: int


class ToolCount(BaseModel):
    tool: str
    calls: int
    errors: int


class AgentActivity(BaseModel):
    agent: str
    service: str
    generated_at: str
    window_s: int
    bucket_s: int
    breaker: str
    control: dict[str, Any]
    series: list[ActivityPoint]
    tools: list[ToolCount]
    anomalies: list[dict[str, Any]]


def rfc3339(ns: int) -> str:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def local_request_guard(service: Service) -> Callable[[Request], None]:
    """Without an API token the API is loopback-only; refuse what a web page could forge.

    A DNS-rebinding page reaches 127.0.0.1 under its own host name, and a cross-site form can
    POST to it: both are refused (403) unless the request names a loopback host and, when it
    carries an Origin, a loopback origin. With a token set, the token is the guard.
    """

    def guard(request: Request) -> None:
        if service.settings.api_token:
            return
        host = request.headers.get("host", "")
        origin = request.headers.get("origin", "")
        if not _loopback_authority(host) or (origin and not _loopback_origin(origin)):
            raise HTTPException(
                403,
                "this API has no token, so it answers only loopback hosts and origins; set "
                "AGENTWATCH_API_TOKEN to serve it elsewhere",
            )

    return guard


def _loopback_authority(authority: str) -> bool:
    if not authority:
        return True  # HTTP/1.0 without Host: no browser sends that
    if authority.startswith("["):
        host = authority[1:].split("]", 1)[0]
    else:
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    return is_loopback(host)


def _loopback_origin(origin: str) -> bool:
    _, _, authority = origin.partition("://")
    return bool(authority) and _loopback_authority(authority)


def ops_router(service: Service) -> APIRouter:
    """The operator endpoints over ``service``; include it in the API app."""
    router = APIRouter(tags=["operations"], dependencies=[Depends(local_request_guard(service))])

    @router.post(
        "/api/v1/query",
        response_model=QueryResponse,
        responses={400: {"description": "ClickHouse refused the statement"},
                   403: {"description": "the statement would write"}},
    )  # fmt: skip
    def query(body: QueryRequest) -> QueryResponse:
        """Run one read-only statement (ClickHouse ``readonly``); admin token required."""
        try:
            result = run_readonly(
                service.storage, body.sql, body.parameters, max_rows=body.max_rows
            )
        except QueryError as exc:
            message = str(exc)
            readonly = "readonly mode" in message or "(READONLY)" in message
            raise HTTPException(403 if readonly else 400, message[:2000]) from exc
        rows, size, truncated = [], 0, result.truncated
        for row in result.rows:
            encoded = jsonable(row)
            size += len(json.dumps(encoded, default=str))
            if size > MAX_RESPONSE_BYTES:
                truncated = True
                break
            rows.append(encoded)
        return QueryResponse(
            columns=result.columns, rows=rows, row_count=len(rows), truncated=truncated
        )

    @router.get("/api/v1/fleet", response_model=FleetView)
    def fleet() -> FleetView:
        """Every agent with status, liveness, breaker and recent anomalies (the status page)."""
        return fleet_view(service)

    @router.get(
        "/api/v1/agents/{agent}/activity",
        response_model=AgentActivity,
        responses={404: {"description": "no such agent"}},
    )
    def activity(
        agent: Annotated[str, Path(min_length=1, max_length=512)],
        minutes: Annotated[int | None, Query(ge=1, le=1440)] = None,
    ) -> AgentActivity:
        """An agent's action rate, tool mix and anomalies over the last ``minutes`` (default:
        since it was first seen, between 1 and 15 minutes)."""
        found = agent_activity(service, agent, window_s=minutes * 60 if minutes else None)
        if found is None:
            raise HTTPException(404, f"unknown agent {agent!r}: it has sent no spans")
        return found

    return router


def _query(service: Service, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    try:
        return service.storage.query(sql, params, readonly=True)[1]
    except StorageError:
        return []  # the page shows what the registry knows; /readyz reports storage


def _heartbeats(service: Service, since_ns: int) -> dict[str, tuple[str, float]]:
    rows = _query(
        service,
        f"SELECT {AGENT_KEY_SQL} AS agent,"
        f" argMax(SpanAttributes['{semconv.AGENT_STATUS}'], Timestamp),"
        f" argMax(toFloat64OrZero(SpanAttributes['{semconv.HEARTBEAT_INTERVAL_S}']), Timestamp)"
        f" FROM {TRACES_TABLE} WHERE SpanName = '{semconv.SPAN_HEARTBEAT}'"
        " AND Timestamp >= fromUnixTimestamp64Nano({since:Int64}) GROUP BY agent",
        {"since": since_ns},
    )
    return {str(a): (str(s), float(i)) for a, s, i in rows}


def _breaker(service: Service, agent: str) -> tuple[str, dict[str, Any]]:
    state = service.control_state(agent) or {"agent": agent, "breaker": semconv.BREAKER_CLOSED}
    return str(state.get("breaker", semconv.BREAKER_CLOSED)), jsonable(state)


def _positive(value: object) -> float:
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


def fleet_view(service: Service) -> FleetView:
    """The fleet now (blocking: one ClickHouse query plus the anomalies')."""
    now = service.clock()
    since = now - RECENT_S * 1_000_000_000
    beats = _heartbeats(service, since)
    recent = service.anomalies(since_ns=since, limit=1000)
    per_agent: dict[str, int] = {}
    for anomaly in recent:
        per_agent[anomaly["agent"]] = per_agent.get(anomaly["agent"], 0) + 1
    agents = []
    for info in service.registry.all():
        known = info.to_json()
        status, interval = beats.get(info.agent, ("", 0.0))
        interval = _positive(known.get("heartbeat_interval_s")) or interval or DEFAULT_HEARTBEAT_S
        last_beat = info.last_heartbeat_ns
        age = max(0.0, (now - last_beat) / 1e9) if last_beat else None
        if age is None:
            liveness = "no_heartbeat"
        elif known.get("lost") or age > LOST_INTERVALS * interval:
            liveness = "lost"
        elif age > LATE_INTERVALS * interval:
            liveness = "late"
        else:
            liveness = "alive"
        agents.append(
            FleetAgent(
                agent=info.agent,
                service=info.service,
                status=status or "unknown",
                liveness=liveness,
                last_heartbeat_at=rfc3339(last_beat) if last_beat else None,
                heartbeat_age_s=round(age, 3) if age is not None else None,
                heartbeat_interval_s=interval,
                last_seen_at=rfc3339(info.last_seen_ns),
                breaker=_breaker(service, info.agent)[0],
                spans=info.spans,
                anomalies=per_agent.get(info.agent, 0),
            )
        )
    summary = FleetSummary(
        agents=len(agents),
        alive=sum(a.liveness == "alive" for a in agents),
        lost=sum(a.liveness == "lost" for a in agents),
        breakers_open=sum(a.breaker != semconv.BREAKER_CLOSED for a in agents),
        anomalies=len(recent),
    )
    return FleetView(
        generated_at=rfc3339(now), summary=summary, agents=agents, anomalies=recent[::-1][:50]
    )


def agent_activity(
    service: Service, agent: str, *, window_s: int | None = None
) -> AgentActivity | None:
    """One agent's recent activity; None when nothing is known about it (blocking).

    ``window_s`` defaults to the time since the agent was first seen, within 1..15 minutes.
    """
    now = service.clock()
    if window_s is None:
        info = service.registry.get(agent)
        seen_s = (now - info.first_seen_ns) / 1e9 if info else 900
        window_s = int(min(900, max(60, math.ceil(seen_s) + 5)))
    bucket_s = max(1, math.ceil(window_s / 90))
    bucket_ns = bucket_s * 1_000_000_000
    start = (now - window_s * 1_000_000_000) // bucket_ns * bucket_ns
    params = {"agent": agent, "since": start, "bucket": bucket_ns}
    where = (
        f"{AGENT_KEY_SQL} = {{agent:String}}"
        " AND Timestamp >= fromUnixTimestamp64Nano({since:Int64})"
        f" AND SpanAttributes['{semconv.GEN_AI_OPERATION_NAME}'] = '{semconv.OP_EXECUTE_TOOL}'"
    )
    buckets = _query(
        service,
        "SELECT intDiv(toUnixTimestamp64Nano(Timestamp), {bucket:Int64}) AS b, count(),"
        f" countIf(StatusCode = 'Error'), any(ServiceName) FROM {TRACES_TABLE} WHERE {where}"
        " GROUP BY b ORDER BY b",
        params,
    )
    tools = _query(
        service,
        f"SELECT SpanAttributes['{semconv.GEN_AI_TOOL_NAME}'] AS tool, count() AS calls,"
        f" countIf(StatusCode = 'Error') FROM {TRACES_TABLE} WHERE {where}"
        " GROUP BY tool ORDER BY calls DESC, tool LIMIT 20",
        params,
    )
    info = service.registry.get(agent)
    if info is None and not buckets:
        return None
    counts = {int(b): (int(n), int(e)) for b, n, e, _ in buckets}
    first = start // bucket_ns
    series = [
        ActivityPoint(t=rfc3339(b * bucket_ns), actions=counts.get(b, (0, 0))[0],
                      errors=counts.get(b, (0, 0))[1])
        for b in range(first, now // bucket_ns + 1)
    ]  # fmt: skip
    breaker, control = _breaker(service, agent)
    return AgentActivity(
        agent=agent,
        service=info.service if info else str(buckets[0][3]),
        generated_at=rfc3339(now),
        window_s=window_s,
        bucket_s=bucket_s,
        breaker=breaker,
        control=control,
        series=series,
        tools=[ToolCount(tool=str(t), calls=int(c), errors=int(e)) for t, c, e in tools],
        anomalies=service.anomalies(since_ns=start, agent=agent, limit=200)[::-1],
    )
