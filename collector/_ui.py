"""The status page at ``/ui``: server-rendered HTML plus a little vanilla JS, no build step.

``/ui`` shows the fleet (agents, status, liveness, last heartbeat, breaker, recent anomalies);
``/ui/agents/{agent}`` an agent's action rate, tool mix and anomalies, with buttons to force its
breaker open or close it and to create or expire silences. Both pages poll the JSON API
(``_ops_api``) for live updates and call the breaker and silence endpoints.

With an API token set, the pages carry no data until the browser presents the token (kept in
``sessionStorage``, sent as a bearer header, so there is no cookie to forge); a strict Content
Security Policy allows only this page's own script and the same origin.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse

from ._http import bearer_ok
from ._ops_api import (
    AgentActivity,
    FleetView,
    agent_activity,
    fleet_view,
    local_request_guard,
)
from ._service import Service
from ._ui_assets import CSS, JS

POLL_MS = 2000


def _authorized(service: Service, request: Request) -> bool:
    return bearer_ok(request.headers.get("authorization"), service.settings.api_token)


def _page(
    title: str,
    body: str,
    *,
    page: str,
    agent: str = "",
    initial: FleetView | AgentActivity | None,
    base: str,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    config = {
        "page": page,
        "agent": agent,
        "base": base,
        "poll_ms": POLL_MS,
        "initial": initial.model_dump(mode="json") if initial is not None else None,
    }
    # "<" escaped so no value can close the script element.
    config_json = json.dumps(config).replace("<", "\\u003c")
    token_form = (
        ""
        if initial is not None
        else '<form id="token-form" class="panel token"><h2>API token</h2>'
        '<p class="muted">This service requires its API token (AGENTWATCH_API_TOKEN). It stays '
        "in this tab's session storage.</p>"
        '<input id="token" type="password" autocomplete="off" size="40"> '
        '<button class="primary" type="submit">Use token</button></form>'
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · agentwatch</title>
<style nonce="{nonce}">{CSS}</style></head>
<body><header><a href="{base}/ui">agentwatch</a><span class="sub">status</span>
<span class="live" id="live">live</span></header>
<main>{token_form}{body}</main>
<script type="application/json" id="aw-config">{config_json}</script>
<script nonce="{nonce}">{JS}</script></body></html>"""
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    return HTMLResponse(
        document,
        headers={
            "content-security-policy": csp,
            "x-frame-options": "DENY",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        },
    )


def _badge(value: str) -> str:
    v = html.escape(value)
    return f'<span class="badge {v}">{v}</span>'


def _fleet_rows(view: FleetView | None, base: str) -> str:
    if view is None:
        return ""
    return "".join(
        f'<tr data-agent="{html.escape(a.agent)}"><td><a href="{base}/ui/agents/'
        f'{quote(a.agent, safe="")}">{html.escape(a.agent)}</a></td>'
        f"<td>{html.escape(a.service)}</td><td>{_badge(a.status)}</td>"
        f"<td>{_badge(a.liveness)}</td><td>{a.heartbeat_age_s or '-'}</td>"
        f'<td class="breaker">{_badge(a.breaker)}</td><td class="num">{a.spans}</td>'
        f'<td class="num">{a.anomalies}</td></tr>'
        for a in view.agents
    )


def ui_router(service: Service) -> APIRouter:
    """``/ui`` and ``/ui/agents/{agent}``; include it in the API app (not in the schema)."""
    router = APIRouter(
        include_in_schema=False, dependencies=[Depends(local_request_guard(service))]
    )

    @router.get("/ui", response_class=HTMLResponse)
    def fleet(request: Request) -> HTMLResponse:
        view = fleet_view(service) if _authorized(service, request) else None
        body = f"""<h1>Fleet</h1><section id="fleet">
<div class="cards" id="summary"></div>
<table><thead><tr><th>agent</th><th>cohort</th><th>status</th><th>liveness</th>
<th>last heartbeat</th><th>breaker</th><th class="num">spans</th>
<th class="num">anomalies (1 h)</th></tr></thead>
<tbody id="fleet-body">{_fleet_rows(view, _base(request))}</tbody>
</table>
<h2>Recent anomalies</h2>
<table><thead><tr><th>detected (UTC)</th><th>agent</th><th>detector</th><th>severity</th>
<th class="num">score</th><th>summary</th></tr></thead><tbody id="recent-body"></tbody></table>
</section>"""
        return _page("Fleet", body, page="fleet", initial=view, base=_base(request))

    @router.get("/ui/agents/{agent}", response_class=HTMLResponse)
    def agent_page(
        request: Request, agent: Annotated[str, Path(min_length=1, max_length=512)]
    ) -> HTMLResponse:
        found = agent_activity(service, agent) if _authorized(service, request) else None
        name = html.escape(agent)
        service_name = html.escape(found.service) if found else ""
        body = f"""<h1>{name} <span class="muted">{service_name}</span></h1>
<section id="agent">
<div class="grid"><div class="panel"><h2 id="rate-title">Actions</h2>
<div id="rate-chart"></div></div>
<div class="panel"><h2>Circuit breaker <span id="breaker"></span></h2>
<div class="muted" id="breaker-reason"></div>
<div class="controls"><input id="reason" placeholder="reason" size="22">
<button class="danger" id="force-open">Force open</button>
<button class="primary" id="close-breaker">Close</button></div>
<h2>Silences</h2><div class="controls"><select id="silence-minutes">
<option value="15">15 min</option><option value="60" selected>1 h</option>
<option value="240">4 h</option><option value="1440">24 h</option></select>
<input id="silence-comment" placeholder="comment" size="16">
<button id="create-silence">Silence</button></div><ul id="silences"></ul>
<div id="action-status"></div></div></div>
<div class="grid"><div class="panel"><h2>Anomalies</h2><table><thead><tr><th>detected (UTC)</th>
<th>detector</th><th>severity</th><th class="num">score</th><th>summary</th></tr></thead>
<tbody id="anomalies-body"></tbody></table></div>
<div class="panel"><h2>Tools in the window</h2><div id="tools-chart"></div></div></div>
</section>"""
        if found is None and _authorized(service, request):
            body = f'<h1>{name}</h1><p class="muted">This agent has sent no spans.</p>'
            return _page(agent, body, page="missing", agent=agent, initial=None,
                         base=_base(request))  # fmt: skip
        return _page(agent, body, page="agent", agent=agent, initial=found, base=_base(request))

    return router


def _base(request: Request) -> str:
    root: Any = request.scope.get("root_path", "")
    return str(root).rstrip("/")
