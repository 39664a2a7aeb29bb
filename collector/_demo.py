"""``agentwatch demo``: a fleet, a runaway agent, and agentwatch stopping it, end to end."""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

from agentwatch.detectors import Anomaly
from agentwatch.sdk import semconv

from ._fleet import Fleet
from ._inbox import WebhookInbox
from ._runner import RunningService
from ._schema import REMEDIATIONS_TABLE, TRACES_TABLE
from ._settings import ServiceSettings


def _ms(later_ns: int, earlier_ns: int) -> str:
    if not later_ns or not earlier_ns:
        return "     n/a"
    return f"{(later_ns - earlier_ns) / 1e6:8.1f}"


def _clock(ns: int, origin_ns: int) -> str:
    return f"t+{(ns - origin_ns) / 1e9:6.2f}s" if ns else "    never"


class _Progress:
    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self.tty = sys.stdout.isatty()
        self.last = 0.0

    def show(self, elapsed_s: float, text: str) -> None:
        if self.tty:
            filled = int(30 * min(1.0, elapsed_s / self.total_s))
            bar = "#" * filled + "-" * (30 - filled)
            print(f"\r  [{bar}] {elapsed_s:5.1f}s  {text}   ", end="", flush=True)
        elif elapsed_s - self.last >= 3.0:
            print(f"  {elapsed_s:5.1f}s  {text}", flush=True)
            self.last = elapsed_s

    def done(self) -> None:
        if self.tty:
            print()


def _table(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "     " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in cells
    ]
    lines.insert(1, "     " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_demo(
    *, agents: int = 20, warmup_s: float = 15.0, data_dir: Path | None = None, seed: int = 7
) -> int:
    """Run the demo; returns the exit code (0 when the runaway agent was stopped)."""
    if agents < 2:
        print("agentwatch demo: --agents must be at least 2", file=sys.stderr)
        return 2
    temp = None
    if data_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="agentwatch-demo-")
        data_dir = Path(temp.name)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    inbox = WebhookInbox()
    settings = ServiceSettings.from_env(
        os.environ,
        data_dir=data_dir,
        otlp_http_port=0,
        otlp_grpc_port=0,
        api_port=0,
        webhook_secret=secret,
        slack_webhook_url=inbox.url,
    )
    print("agentwatch demo")
    print(f"  1. starting agentwatch on embedded ClickHouse ({data_dir})")
    started_ns = time.time_ns()
    running = RunningService(settings)
    service = running.service
    anomalies: list[Anomaly] = []
    service.add_anomaly_listener(anomalies.append)
    runaway_index = min(7, agents - 1)
    print(f"     OTLP/HTTP {running.otlp_endpoint}   API {running.api_url}")
    print(f"  2. starting a fleet of {agents} simulated agents (real SDK, OTLP/HTTP, signed "
          "control webhooks)")  # fmt: skip
    fleet = Fleet(
        agents,
        endpoint=running.otlp_endpoint,
        webhook_secret=secret,
        seed=seed,
        runaway_index=runaway_index,
    )
    runaway = fleet.members[runaway_index]
    name = runaway.agent.instance_id
    code = 1
    try:
        fleet.start()
        progress = _Progress(warmup_s)
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < warmup_s:
            stats = service.counters
            progress.show(
                elapsed,
                f"{len(service.registry):3d} agents  {stats['spans_accepted']:6d} spans"
                f"  {len(anomalies)} anomalies",
            )
            time.sleep(0.2)
        progress.done()
        print(f"  3. {name} runs away: a tool-call loop, then a flood of API calls")
        fleet.runaway.go.set()
        runaway.thread.join(30)
        time.sleep(1.0)  # let the last spans of everyone arrive
        fleet.shutdown()
        service.flush()
        code = _report(running, fleet, anomalies, inbox, name, started_ns)
    finally:
        fleet.shutdown()
        running.stop()
        inbox.close()
        if temp is not None:
            temp.cleanup()
    return code


def _report(
    running: RunningService,
    fleet: Fleet,
    anomalies: list[Anomaly],
    inbox: WebhookInbox,
    name: str,
    started_ns: int,
) -> int:
    plan = fleet.runaway
    runaway = next(m for m in fleet.members if m.agent.instance_id == name)
    mine = [a for a in anomalies if a.agent == name]
    loop = next((a for a in mine if a.detector == "loop"), None)
    spike = next((a for a in mine if a.detector == "action_rate"), None)
    others = [a for a in anomalies if a.agent != name]
    stats = runaway.stats
    origin = plan.loop_started_ns
    print("\n  4. what happened to", name)
    print(f"     {'event':<32} {'wall clock':<9}   latency (ms)")
    third_call = plan.loop_calls_ns[2] if len(plan.loop_calls_ns) > 2 else 0
    rows = [
        ("loop onset (1st identical call)", plan.loop_started_ns, "", 0),
        ("3rd identical call", third_call, "", 0),
        ("loop detected", loop.detected_ns if loop else 0, "since the 3rd call", third_call),
        ("flood onset (first API call)", plan.flood_started_ns, "", 0),
        ("flood detected", spike.detected_ns if spike else 0, "since flood onset",
         plan.flood_started_ns),
        ("breaker open (agent side)", stats.breaker_open_at_ns, "since detection",
         spike.detected_ns if spike else 0),
        ("agent stopped", stats.stopped_at_ns, "since flood onset", plan.flood_started_ns),
    ]  # fmt: skip
    for label, at, what, since in rows:
        latency = f"{_ms(at, since)}  {what}" if what else ""
        print(f"     {label:<32} {_clock(at, origin)}   {latency}")
    for a in mine:
        print(f"     - {a.severity} {a.detector}: {a.summary}")
    print(f"     agent stop reason: {stats.stop_reason or 'still running'}")
    print(f"     actions {name} completed in the whole run: {stats.actions}")

    print(f"\n  5. Slack: {len(inbox.received)} message(s) received by the stand-in workspace")
    for message in inbox.received[:4]:
        print("     >", str(message.json().get("text", ""))[:110])

    since_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_ns / 1e9 - 1))
    api = httpx.get(f"{running.api_url}/api/v1/anomalies", params={"since": since_text}, timeout=10)
    print(f"\n  6. GET /api/v1/anomalies?since={since_text} -> {api.status_code}, "
          f"{len(api.json())} anomalies")  # fmt: skip

    storage = running.service.storage
    tool = f"SpanAttributes['{semconv.GEN_AI_TOOL_NAME}']"
    fp = f"SpanAttributes['{semconv.ACTION_FINGERPRINT}']"
    instance = f"ResourceAttributes['{semconv.SERVICE_INSTANCE_ID}']"
    operation = f"SpanAttributes['{semconv.GEN_AI_OPERATION_NAME}']"
    sql = (
        f"SELECT toStartOfSecond(Timestamp) AS second, {tool} AS tool, count() AS calls,\n"
        f"       uniqExact({fp}) AS distinct_calls\n"
        f"FROM {TRACES_TABLE}\n"
        f"WHERE {instance} = {{agent:String}} AND {operation} = '{semconv.OP_EXECUTE_TOOL}'\n"
        f"  AND Timestamp >= fromUnixTimestamp64Nano({{since:Int64}})\n"
        f"GROUP BY second, tool ORDER BY second, tool"
    )
    columns, result = storage.query(
        sql, {"agent": name, "since": plan.loop_started_ns - 5_000_000_000}, readonly=True
    )
    print(f"\n  7. post-mortem: what did {name} do around the incident? (SQL on ClickHouse)")
    print("     " + sql.replace("\n", "\n     "))
    print(_table(columns, [(r[0].strftime("%H:%M:%S"), *r[1:]) for r in result]))
    columns, log = storage.query(
        f"SELECT Kind, Action, Agent, Attempts, StatusCode, Ok, round(LatencyMs, 1) AS ms "
        f"FROM {REMEDIATIONS_TABLE} ORDER BY Timestamp",
        readonly=True,
    )
    print("\n  8. remediation and notification log (agentwatch_remediations)")
    print(_table(columns, log))
    total = running.service.counters
    print(f"\n  fleet: {fleet.actions} actions, {total['spans_accepted']} spans stored, "
          f"{len(anomalies)} anomalies ({len(others)} on other agents)")  # fmt: skip
    stopped = bool(stats.stopped_at_ns) and spike is not None and loop is not None
    bystanders = [
        m.agent.instance_id for m in fleet.members if m.stats.stopped_at_ns and m is not runaway
    ]
    if stopped and not bystanders:
        print(f"\n  RESULT: {name} was detected, alerted and stopped; "
              f"{len(fleet.members) - 1} other agents kept running.")  # fmt: skip
        return 0
    print(f"\n  RESULT: FAILED (stopped={stopped}, loop={loop is not None}, "
          f"spike={spike is not None}, other agents stopped={bystanders})")  # fmt: skip
    return 1
