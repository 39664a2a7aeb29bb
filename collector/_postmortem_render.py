"""Rendering of a :class:`~._postmortem.Report`: Markdown, and one self-contained HTML file.

Charts are drawn with matplotlib's Agg backend (no display) into PNGs embedded as base64 data
URIs, so the HTML file can be attached to an incident review as it is.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._postmortem_report import Report

NS = 1_000_000_000


def when(ns: int) -> str:
    """UTC wall clock with milliseconds."""
    if not ns:
        return "-"
    seconds, rest = divmod(int(ns), NS)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def _seconds(value: float | None) -> str:
    return "not recovered in the window" if value is None else f"{value:.1f} s"


def sections(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by both formats."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    out.append((
        "Actions by tool",
        ["tool", "calls", "errors", "distinct calls", "p50 ms", "first", "last"],
        [[t.tool, str(t.calls), str(t.errors), str(t.distinct_calls), f"{t.p50_ms:.1f}",
          when(t.first_ns), when(t.last_ns)] for t in report.tools],
    ))  # fmt: skip
    out.append(("Spans by name", ["span", "count"], [[n, str(c)] for n, c in report.signals]))
    beats = report.heartbeats
    statuses = sorted({s for _, s, _ in beats if s})
    out.append((
        "Heartbeats",
        ["heartbeats", "first", "last", "interval", "statuses", "gaps"],
        [[str(len(beats)), when(beats[0][0]) if beats else "-",
          when(beats[-1][0]) if beats else "-",
          f"{beats[-1][2]:g} s" if beats else "-", ", ".join(statuses) or "-",
          str(len(report.gaps))]],
    ))  # fmt: skip
    out.append((
        "Heartbeat gaps",
        ["from", "to", "silent for"],
        [[when(g.start_ns), when(g.end_ns), f"{g.seconds:.1f} s"] for g in report.gaps],
    ))  # fmt: skip
    out.append((
        "State transitions",
        ["time", "from", "to"],
        [[when(t), a, b] for t, a, b in report.transitions],
    ))  # fmt: skip
    out.append((
        "Checkpoints",
        ["time", "checkpoint", "step"],
        [[when(t), c, str(s)] for t, c, s in report.checkpoints],
    ))  # fmt: skip
    out.append((
        "Anomalies",
        ["detected", "onset", "detector", "severity", "score / threshold", "summary", "baseline",
         "evidence", "id"],
        [[when(a["detected_ns"]), when(a["onset_ns"]), a["detector"], a["severity"],
          f"{a['score']:.3g} / {a['threshold']:.3g}", a["summary"], a["baseline"] or "-",
          _evidence_text(a["evidence"]), a["id"]] for a in report.anomalies],
    ))  # fmt: skip
    out.append((
        "Breaker transitions",
        ["time", "kind", "action", "state", "anomaly"],
        [[when(e.ts_ns), e.kind, e.action, e.breaker_state, e.anomaly_id]
         for e in report.breaker_transitions],
    ))  # fmt: skip
    out.append((
        "Rollbacks",
        ["time", "checkpoint", "delivered", "attempts", "anomaly"],
        [[when(e.ts_ns), e.action.split(":", 1)[1], "yes" if e.ok else f"no: {e.error}",
          str(e.attempts), e.anomaly_id] for e in report.rollbacks],
    ))  # fmt: skip
    out.append((
        "Recovery (RTO / RPO)",
        ["kind", "began", "healthy again", "RTO", "RPO (steps)", "checkpoint", "anomaly"],
        [[r.kind, when(r.started_ns), when(r.recovered_ns), _seconds(r.rto_s),
          "-" if r.rpo_steps is None else str(r.rpo_steps), r.checkpoint_id or "-", r.anomaly_id]
         for r in report.recoveries],
    ))  # fmt: skip
    out.append((
        "Alert and remediation deliveries",
        ["time", "target", "action", "ok", "status", "attempts", "latency ms", "error",
         "webhook id"],
        [[when(e.ts_ns), e.kind, e.action, "yes" if e.ok else "NO",
          str(e.status_code) if e.status_code >= 0 else "-", str(e.attempts),
          f"{e.latency_ms:.1f}", e.error, e.webhook_id] for e in report.deliveries],
    ))  # fmt: skip
    out.append((
        "Timeline",
        ["time", "what", "detail"],
        [[when(e.ts_ns), e.kind, e.text] for e in report.timeline],
    ))  # fmt: skip
    return out


def _evidence_text(evidence: dict[str, Any]) -> str:
    shown = {k: v for k, v in evidence.items() if k != "summary"}
    return json.dumps(shown, sort_keys=True, default=str)[:300] if shown else "-"


def headline(report: Report) -> list[tuple[str, str]]:
    actions = sum(t.calls for t in report.tools)
    errors = sum(t.errors for t in report.tools)
    rto = [r.rto_s for r in report.recoveries if r.rto_s is not None]
    failed = sum(1 for e in report.deliveries if not e.ok)
    return [
        ("Agent", f"{report.agent} ({report.service or 'unknown cohort'})"),
        ("Window", f"{when(report.since_ns)} .. {when(report.until_ns)}"),
        ("Incident", report.incident or "-"),
        ("Actions", f"{actions} over {len(report.tools)} tools, {errors} errors"),
        ("Anomalies", str(len(report.anomalies))),
        ("Heartbeat gaps", str(len(report.gaps))),
        ("Breaker transitions", str(len(report.breaker_transitions))),
        ("Deliveries", f"{len(report.deliveries)} ({failed} failed)"),
        ("RTO", ", ".join(f"{v:.1f} s" for v in rto) or "-"),
        ("Generated", when(report.generated_ns)),
    ]


# --- Markdown ----------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def to_markdown(report: Report) -> str:
    lines = [f"# Post-mortem: {report.agent}", ""]
    lines += [f"- **{k}**: {_md_cell(v)}" for k, v in headline(report)]
    for title, header, rows in sections(report):
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("_none recorded in the window_")
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# --- HTML with charts --------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}dt{font-weight:600}
dd{margin:0}img{max-width:100%;border:1px solid #d0d7de;margin:.5rem 0}
.none{color:#656d76;font-style:italic}.bad{color:#cf222e;font-weight:600}
"""


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def charts(report: Report) -> list[tuple[str, str]]:
    """(title, PNG data URI) of each chart; none when nothing was recorded."""
    from matplotlib.figure import Figure  # Figure without pyplot: Agg, no global state

    out = []
    if report.series:
        tools = sorted({t for _, t, _ in report.series})
        buckets = sorted({b for b, _, _ in report.series})
        index = {b: i for i, b in enumerate(buckets)}
        counts = {t: [0] * len(buckets) for t in tools}
        for b, t, n in report.series:
            counts[t][index[b]] += n
        xs = [(b - report.since_ns) / NS for b in buckets]
        fig = Figure(figsize=(11, 3.6))
        ax = fig.subplots()
        bottom = [0] * len(buckets)
        for tool in tools:
            ax.bar(xs, counts[tool], width=report.bucket_s * 0.9, bottom=bottom, label=tool,
                   align="edge")  # fmt: skip
            bottom = [a + b for a, b in zip(bottom, counts[tool], strict=True)]
        _marks(ax, report)
        ax.set_xlabel(f"seconds since {when(report.since_ns)}")
        ax.set_ylabel(f"actions per {report.bucket_s} s")
        ax.legend(loc="upper left", fontsize=8, ncols=4)
        out.append(("Actions by tool over time (red: anomalies, black: breaker)", _png(fig)))
    if len(report.heartbeats) > 1:
        beats = report.heartbeats
        fig = Figure(figsize=(11, 2.6))
        ax = fig.subplots()
        xs = [(t - report.since_ns) / NS for t, _, _ in beats[1:]]
        ys = [(b[0] - a[0]) / NS for a, b in itertools.pairwise(beats)]
        ax.plot(xs, ys, marker=".", linewidth=0.8, color="#0969da")
        if beats[-1][2] > 0:
            ax.axhline(beats[-1][2], color="#1a7f37", linestyle=":", label="interval")
        for gap in report.gaps:
            ax.axvspan((gap.start_ns - report.since_ns) / NS, (gap.end_ns - report.since_ns) / NS,
                       color="#cf222e", alpha=0.15)  # fmt: skip
        ax.set_ylabel("s between heartbeats")
        ax.set_xlabel(f"seconds since {when(report.since_ns)} (shaded: gaps)")
        out.append(("Heartbeat intervals", _png(fig)))
    if report.anomalies:
        fig = Figure(figsize=(11, 2.6))
        ax = fig.subplots()
        for detector in sorted({a["detector"] for a in report.anomalies}):
            mine = [a for a in report.anomalies if a["detector"] == detector]
            ax.scatter([(a["detected_ns"] - report.since_ns) / NS for a in mine],
                       [a["score"] / a["threshold"] if a["threshold"] else a["score"]
                        for a in mine], label=detector)  # fmt: skip
        ax.axhline(1.0, color="#656d76", linestyle=":")
        ax.set_xlim(0, (report.until_ns - report.since_ns) / NS)
        ax.set_ylabel("score / threshold")
        ax.set_xlabel(f"seconds since {when(report.since_ns)}")
        ax.legend(loc="upper left", fontsize=8)
        out.append(("Anomaly scores relative to their thresholds", _png(fig)))
    return out


def _marks(ax: Any, report: Report) -> None:
    ax.set_xlim(0, (report.until_ns - report.since_ns) / NS)
    for a in report.anomalies:
        ax.axvline((a["detected_ns"] - report.since_ns) / NS, color="#cf222e", linewidth=1)
    for e in report.breaker_transitions:
        ax.axvline((e.ts_ns - report.since_ns) / NS, color="black", linestyle="--", linewidth=1)


def _table(header: Sequence[str], rows: list[list[str]]) -> str:
    if not rows:
        return '<p class="none">none recorded in the window</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: Report) -> str:
    title = f"Post-mortem: {report.agent}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><dl>",
        *(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in headline(report)),
        "</dl>",
    ]
    for name, uri in charts(report):
        parts.append(f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" src="{uri}">')
    for name, header, rows in sections(report):
        parts.append(f"<h2>{html.escape(name)}</h2>{_table(header, rows)}")
    parts.append("</body></html>\n")
    return "\n".join(parts)
