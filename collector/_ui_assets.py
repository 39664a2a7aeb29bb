"""The status page's stylesheet and script, as constants: no front-end build, no package data.

The script polls the JSON API (``/api/v1/fleet``, ``/api/v1/agents/{agent}/activity``,
``/api/v1/silences``), redraws tables and inline SVG charts, and calls the breaker and silence
endpoints. It sends the API token from ``sessionStorage`` when the service has one.
"""

from __future__ import annotations

CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;
--bad:#cf222e;--accent:#0969da}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
margin:0;color:var(--fg);background:#fff}
header{display:flex;align-items:center;gap:1rem;padding:.7rem 1.5rem;background:#24292f;color:#fff}
header a{color:#fff;text-decoration:none;font-weight:600}header .sub{color:#c9d1d9;font-size:12px}
header .live{margin-left:auto;font-size:12px;color:#c9d1d9}
main{padding:1rem 1.5rem;max-width:1400px;margin:auto}
h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1rem;margin:1.2rem 0 .5rem}
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin-bottom:1rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem;min-width:130px;
background:#fff}
.card b{display:block;font-size:1.5rem}.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;white-space:nowrap}
th{background:var(--bg);font-weight:600}td.num,th.num{text-align:right}
td.wrap{white-space:normal}
a{color:var(--accent)}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;
border:1px solid currentColor}
.alive,.closed,.running{color:var(--ok)}.late,.half_open,.idle,.warning,.metrics_only{color:var(--warn)}
.lost,.open,.forced_open,.critical,.paused{color:var(--bad)}.no_heartbeat,.unknown,.info{color:var(--muted)}
.grid{display:grid;grid-template-columns:2fr 1fr;gap:1rem}
.panel{border:1px solid var(--line);border-radius:6px;padding:.7rem 1rem;background:#fff}
.controls{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center;margin:.3rem 0}
button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid var(--line);
background:var(--bg);cursor:pointer}button.danger{background:var(--bad);color:#fff;border-color:var(--bad)}
button.primary{background:var(--ok);color:#fff;border-color:var(--ok)}
input,select{font:inherit;padding:3px 6px;border:1px solid var(--line);border-radius:6px}
#action-status{font-size:12px;color:var(--muted);min-height:1.2em}
#action-status.error{color:var(--bad)}
svg text{font-size:10px;fill:var(--muted)}
.token{max-width:420px;margin:3rem auto}.muted{color:var(--muted)}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"""

JS = r"""
"use strict";
const AW = JSON.parse(document.getElementById("aw-config").textContent);
const TOKEN_KEY = "agentwatch.api-token";
const $ = (id) => document.getElementById(id);
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function badge(v) { return `<span class="badge ${esc(v)}">${esc(v)}</span>`; }
function age(s) {
  if (s === null || s === undefined) return "never";
  return s < 90 ? `${s.toFixed(1)} s ago` : `${(s / 60).toFixed(1)} min ago`;
}
async function api(path, options = {}) {
  const headers = Object.assign({"accept": "application/json"}, options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["authorization"] = "Bearer " + token;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, Object.assign({}, options, {headers}));
  if (response.status === 401) { showToken(); throw new Error("the API needs a token"); }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!response.ok) {
    const detail = data && data.detail ? JSON.stringify(data.detail) : text;
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}
function showToken() {
  const form = $("token-form");
  if (form) form.hidden = false;
}
function setupToken() {
  const form = $("token-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    form.hidden = true;
    refresh();
  });
}
function setLive(text) { const el = $("live"); if (el) el.textContent = text; }

// --- fleet page --------------------------------------------------------------------------
function renderFleet(view) {
  const s = view.summary;
  $("summary").innerHTML = [["agents", s.agents], ["alive", s.alive], ["lost", s.lost],
    ["breakers not closed", s.breakers_open], ["anomalies (1 h)", s.anomalies]]
    .map(([k, v]) => `<div class="card"><b>${esc(v)}</b><span>${esc(k)}</span></div>`).join("");
  $("fleet-body").innerHTML = view.agents.map((a) => `<tr data-agent="${esc(a.agent)}">
    <td><a href="${AW.base}/ui/agents/${encodeURIComponent(a.agent)}">${esc(a.agent)}</a></td>
    <td>${esc(a.service)}</td><td>${badge(a.status)}</td><td>${badge(a.liveness)}</td>
    <td>${esc(age(a.heartbeat_age_s))}</td><td class="breaker">${badge(a.breaker)}</td>
    <td class="num">${esc(a.spans)}</td><td class="num">${esc(a.anomalies)}</td></tr>`).join("");
  $("recent-body").innerHTML = view.anomalies.slice(0, 20).map((a) => `<tr>
    <td>${esc(a.detected_at.replace("T", " ").slice(0, 19))}</td>
    <td><a href="${AW.base}/ui/agents/${encodeURIComponent(a.agent)}">${esc(a.agent)}</a></td>
    <td>${esc(a.detector)}</td><td>${badge(a.severity)}</td>
    <td class="num">${Number(a.score).toFixed(2)}</td>
    <td class="wrap">${esc((a.evidence && a.evidence.summary) || "")}</td></tr>`).join("");
  $("fleet").dataset.generated = view.generated_at;
}

// --- agent page --------------------------------------------------------------------------
function rateChart(act) {
  const w = 760, h = 200, pad = 30, n = act.series.length || 1;
  const max = Math.max(1, ...act.series.map((p) => p.actions));
  const bw = (w - pad - 5) / n;
  const t0 = Date.parse(act.series.length ? act.series[0].t : act.generated_at);
  const span = act.window_s * 1000 + act.bucket_s * 1000;
  const x = (iso) => pad + (Date.parse(iso) - t0) / span * (w - pad - 5);
  const bars = act.series.map((p, i) => {
    const bh = p.actions / max * (h - 30), eh = p.errors / max * (h - 30);
    return `<rect x="${pad + i * bw}" y="${h - 20 - bh}" width="${Math.max(1, bw - 1)}"
      height="${bh}" fill="#0969da"><title>${esc(p.t)}: ${p.actions} actions</title></rect>` +
      (p.errors ? `<rect x="${pad + i * bw}" y="${h - 20 - eh}" width="${Math.max(1, bw - 1)}"
      height="${eh}" fill="#cf222e"/>` : "");
  }).join("");
  const marks = act.anomalies.map((a) => `<line x1="${x(a.detected_at)}" x2="${x(a.detected_at)}"
    y1="8" y2="${h - 20}" stroke="#cf222e" stroke-dasharray="3 2"><title>${esc(a.detector)}:
    ${esc((a.evidence && a.evidence.summary) || "")}</title></line>`).join("");
  return `<svg id="rate-svg" viewBox="0 0 ${w} ${h}" width="100%" role="img"
    aria-label="actions per ${act.bucket_s} s">
    <text x="0" y="12">${max}</text><text x="0" y="${h - 22}">0</text>
    <line x1="${pad}" x2="${w}" y1="${h - 20}" y2="${h - 20}" stroke="#d0d7de"/>
    ${bars}${marks}
    <text x="${pad}" y="${h - 5}">-${act.window_s >= 120 ? Math.round(act.window_s / 60) + " min"
      : act.window_s + " s"}</text>
    <text x="${w - 30}" y="${h - 5}">now</text></svg>`;
}
function toolsChart(act) {
  const tools = act.tools.slice(0, 10), w = 380, row = 20, h = Math.max(1, tools.length) * row + 8;
  const max = Math.max(1, ...tools.map((t) => t.calls));
  if (!tools.length) return '<p class="muted">no actions in the window</p>';
  return `<svg id="tools-svg" viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="tools">` +
    tools.map((t, i) => `<text x="0" y="${i * row + 14}">${esc(t.tool)}</text>
      <rect x="120" y="${i * row + 3}" height="14" width="${t.calls / max * (w - 170)}"
        fill="#0969da"/><rect x="120" y="${i * row + 3}" height="14"
        width="${t.errors / max * (w - 170)}" fill="#cf222e"/>
      <text x="${124 + t.calls / max * (w - 170)}" y="${i * row + 14}">${t.calls}</text>`)
      .join("") + "</svg>";
}
function renderAgent(act) {
  $("breaker").innerHTML = badge(act.breaker);
  $("breaker").dataset.state = act.breaker;
  $("breaker-reason").textContent = act.control.reason || "";
  const minutes = act.window_s >= 120 ? `${Math.round(act.window_s / 60)} min`
    : `${act.window_s} s`;
  $("rate-title").textContent =
    `Actions per ${act.bucket_s} s, last ${minutes} (red: errors, dashed: anomalies)`;
  $("rate-chart").innerHTML = rateChart(act);
  $("tools-chart").innerHTML = toolsChart(act);
  $("anomalies-body").innerHTML = act.anomalies.slice(0, 50).map((a) => `<tr>
    <td>${esc(a.detected_at.replace("T", " ").slice(0, 19))}</td><td>${esc(a.detector)}</td>
    <td>${badge(a.severity)}</td><td class="num">${Number(a.score).toFixed(2)}</td>
    <td class="wrap">${esc((a.evidence && a.evidence.summary) || "")}</td></tr>`).join("");
  $("agent").dataset.generated = act.generated_at;
}
function mine(silence) { return JSON.stringify(silence.matchers || "").includes(AW.agent); }
function matchersText(ms) {
  return (ms || []).map((m) => typeof m === "string" ? m :
    `${m.name}${m.isEqual === false ? "!" : ""}${m.isRegex ? "=~" : "="}"${m.value}"`).join(", ");
}
function endsAt(s) {
  if (s.ends_at_ns) return new Date(s.ends_at_ns / 1e6).toISOString().slice(0, 19) + "Z";
  return s.ends_at || s.endsAt || "";
}
function silenceState(s) { return (s.status && s.status.state) || s.state || s.status || ""; }
async function refreshSilences() {
  let list;
  try { list = await api(AW.base + "/api/v1/silences"); } catch (e) {
    $("silences").innerHTML = `<li class="muted">silences unavailable (${esc(e.message)})</li>`;
    return;
  }
  const items = (Array.isArray(list) ? list : (list && list.silences) || [])
    .filter((s) => mine(s) && silenceState(s) !== "expired");
  $("silences").innerHTML = items.length ? items.map((s) => `<li data-id="${esc(s.id)}">
    ${esc(matchersText(s.matchers))} until ${esc(endsAt(s))}
    ${esc(s.comment || "")} <button class="expire-silence" data-id="${esc(s.id)}">Expire</button>
    </li>`).join("") : '<li class="muted">no active silence for this agent</li>';
}
async function act(label, path, options) {
  const status = $("action-status");
  status.className = ""; status.textContent = label + " ...";
  try {
    await api(AW.base + path, options);
    status.textContent = label + ": done";
  } catch (e) {
    status.className = "error"; status.textContent = label + " failed: " + e.message;
  }
  await refresh();
}
function setupAgent() {
  const agent = encodeURIComponent(AW.agent);
  $("force-open").addEventListener("click", () => act("force open",
    `/api/v1/breakers/${agent}/force-open`,
    {method: "POST", body: JSON.stringify({reason: $("reason").value || "forced open from /ui"})}));
  $("close-breaker").addEventListener("click", () => act("close",
    `/api/v1/breakers/${agent}/close`, {method: "POST", body: "{}"}));
  $("create-silence").addEventListener("click", () => {
    const ends = new Date(Date.now() + Number($("silence-minutes").value) * 60000);
    act("silence", "/api/v1/silences", {method: "POST", body: JSON.stringify({
      matchers: [`agent="${AW.agent.replace(/["\\]/g, "\\$&")}"`],
      ends_at: ends.toISOString(), created_by: "agentwatch /ui",
      comment: $("silence-comment").value || "silenced from /ui"})});
  });
  $("silences").addEventListener("click", (event) => {
    const id = event.target.dataset && event.target.dataset.id;
    if (id) act("expire", `/api/v1/silences/${encodeURIComponent(id)}`, {method: "DELETE"});
  });
}

async function refresh() {
  try {
    if (AW.page === "missing") return;
    if (AW.page === "fleet") renderFleet(await api(AW.base + "/api/v1/fleet"));
    else {
      renderAgent(await api(`${AW.base}/api/v1/agents/${encodeURIComponent(AW.agent)}/activity`));
      await refreshSilences();
    }
    setLive("live · updated " + new Date().toLocaleTimeString());
  } catch (e) { setLive("not updated: " + e.message); }
}
setupToken();
if (AW.page === "agent") setupAgent();
if (AW.page === "missing") AW.initial = null;
if (AW.initial) {
  if (AW.page === "fleet") renderFleet(AW.initial); else renderAgent(AW.initial);
  if (AW.page === "agent") refreshSilences();
} else refresh();
setInterval(refresh, AW.poll_ms);
"""
