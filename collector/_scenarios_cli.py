"""``agentwatch backtest scenarios``: the pipeline on simulated fleets with labelled faults.

The simulation and the scoring are pure (``agentwatch.detectors._scenarios`` and ``_evaluate``);
this module parses arguments, shows progress, prints the table and writes the optional files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path
from typing import Any, TextIO

from agentwatch.detectors._evaluate import ACCEPTS, PRIMARY, Evaluation, evaluate, percentile
from agentwatch.detectors._scenarios import FAULT_TYPES, Scenario, make_scenario

__all__ = ["add_scenarios_arguments", "run_scenarios"]

_DESCRIPTION = """\
Simulate a fleet (event level, simulated time, seeded: no SDK, no sockets) with labelled
injected faults amid normal variation (steady and bursty agents, a load cycle, agents joining
and leaving, a gradual tool-mix change per cohort), run every per-agent detector over it, with
liveness on a simulated 1 s tick, and print per fault type: precision, recall, F1 and the
detection delay (median and max, in seconds and in the agent's actions). Then run a fleet of the
same size with no faults and count its breaker-opening (CRITICAL) false alarms per fleet-hour.

Matching: an anomaly matches a fault when it is on the same agent and detected within
[fault start, fault end + --grace-s]. Recall counts a fault found by any detector listed for its
type below; precision is reported under the type a detector is for: TP matched a fault of an
accepting type, FP matched no fault on that agent, 'cross' (not in precision) matched only a
fault of another type.

detectors counted per fault type:
""" + "\n".join(f"  {kind:<15} {', '.join(sorted(ACCEPTS[kind]))}" for kind in FAULT_TYPES)

_EPILOG = """\
examples:
  agentwatch backtest scenarios                      # 200 agents, 1 simulated hour, seed 0
  agentwatch backtest scenarios --agents 50 --hours 0.5 --seed 3 --out results/scenarios
"""


def add_scenarios_arguments(datasets: Any) -> None:
    """Adds the ``scenarios`` sub-command to ``backtest``'s sub-parsers."""
    parser = datasets.add_parser(
        "scenarios",
        help="score every per-agent detector on a simulated fleet with labelled faults",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--agents", type=int, default=200, help="fleet size (default 200)")
    parser.add_argument(
        "--hours", type=float, default=1.0, help="simulated hours per fleet (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of both fleets (default 0)")
    parser.add_argument(
        "--fault-share",
        type=float,
        default=0.5,
        help="share of agents that get faults, 5-10 min apart after a 10 min warm-up (default 0.5)",
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=30.0,
        help="an anomaly up to this long after a fault's end still matches it (default 30)",
    )
    parser.add_argument(
        "--normal-hours",
        type=float,
        help="length of the fault-free fleet's run (default: --hours; 0 skips it)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write faults.csv, anomalies.csv and summary.json here",
    )


def run_scenarios(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Runs the faulted fleet, then the normal one; prints the tables; returns 0."""
    if args.agents < 1:
        raise ValueError(f"--agents must be >= 1, got {args.agents}")
    normal_hours = args.hours if args.normal_hours is None else args.normal_hours
    faulted = make_scenario(
        args.seed, agents=args.agents, hours=args.hours, fault_share=args.fault_share
    )
    result = evaluate(faulted, grace_s=args.grace_s, progress=_progress("faulted fleet", stderr))
    print(
        f"faulted fleet: {args.agents} agents x {args.hours:g} h (seed {args.seed}), "
        f"{result.events:,} events, {len(faulted.faults)} faults",
        file=stdout,
    )
    _print_table(result, stdout)
    summary: dict[str, Any] = {"faulted": _summary(result)}
    targets = delay_targets(faulted, result)
    summary["faulted"]["targets"] = {
        name: {"met": met, "faults": n} for name, (met, n) in targets.items()
    }
    print(
        "issue's delay targets: "
        + "; ".join(f"{name} {met}/{n}" for name, (met, n) in targets.items()),
        file=stdout,
    )
    normal: Evaluation | None = None
    if normal_hours > 0:
        quiet = make_scenario(
            args.seed + 1, agents=args.agents, hours=normal_hours, fault_share=0.0
        )
        normal = evaluate(quiet, grace_s=args.grace_s, progress=_progress("normal fleet", stderr))
        per_hour = normal.critical_false / normal.fleet_hours
        by_detector = ", ".join(f"{d} {n}" for d, n in sorted(normal.false_by_detector.items()))
        print(
            f"\nnormal fleet: {args.agents} agents x {normal_hours:g} h (seed {args.seed + 1}), "
            f"{normal.events:,} events: {len(normal.anomalies)} false alarms"
            f"{f' ({by_detector})' if by_detector else ''}",
            file=stdout,
        )
        print(
            f"breaker-opening (CRITICAL) false alarms: {normal.critical_false} "
            f"= {per_hour:.2f} per fleet-hour",
            file=stdout,
        )
        summary["normal"] = _summary(normal)
    if args.out is not None:
        _write(args.out, faulted, result, summary)
        print(f"\nwrote {args.out}/faults.csv, anomalies.csv, summary.json", file=stdout)
    return 0


def delay_targets(scenario: Scenario, result: Evaluation) -> dict[str, tuple[int, int]]:
    """(faults that met it, faults) for each detection-delay target of the detectors' issue:
    loops flagged by the 3rd repeat, 5x rate spikes within 2 s of onset, heartbeat loss within
    3 of the agent's intervals of its death (plus the liveness timer's 1 s tick)."""
    loops = result.scores["tool_loop"]
    spikes = result.scores["rate_spike"]
    interval = {p.agent: p.heartbeat_s for p in scenario.profiles}
    lost = [
        (fault, hit)
        for fault, hit in zip(scenario.faults, result.matched, strict=True)
        if fault.kind == "heartbeat_loss"
    ]
    return {
        "loops by the 3rd repeat": (sum(d <= 3 for d in loops.delays_actions), loops.faults),
        "5x rate spikes within 2 s": (sum(d <= 2.0 for d in spikes.delays_s), spikes.faults),
        "heartbeat loss within 3 intervals (+1 s tick)": (
            sum(
                hit is not None
                and (hit.detected_ns - fault.start_ns) / 1e9 <= 3 * interval[fault.agent] + 1.0
                for fault, hit in lost
            ),
            len(lost),
        ),
    }


def _progress(label: str, stderr: TextIO) -> Any:
    started = time.monotonic()

    def show(done: float) -> None:
        print(
            f"  [{label}] {done:4.0%} of simulated time, {time.monotonic() - started:5.1f} s",
            file=stderr,
            flush=True,
        )

    return show


def _fmt(value: float, spec: str = ".1f") -> str:
    return "-" if math.isnan(value) else format(value, spec)


def _print_table(result: Evaluation, stdout: TextIO) -> None:
    print(
        f"{'fault type':<15} {'faults':>6} {'recall':>6} {'prec.':>6} {'F1':>6} "
        f"{'TP':>5} {'FP':>4} {'crit.FP':>7} {'cross':>5}  "
        f"{'delay s p50/max':>15}  {'actions p50/max':>15}",
        file=stdout,
    )
    for kind, s in result.scores.items():
        delay_s = f"{_fmt(percentile(s.delays_s, 0.5))}/{_fmt(max(s.delays_s, default=math.nan))}"
        delay_a = (
            f"{_fmt(percentile(s.delays_actions, 0.5), '.0f')}/"
            f"{_fmt(max(s.delays_actions, default=math.nan), '.0f')}"
        )
        print(
            f"{kind:<15} {s.faults:>6} {s.recall:>6.3f} {s.precision:>6.3f} {s.f1:>6.3f} "
            f"{s.tp:>5} {s.fp:>4} {s.critical_fp:>7} {s.cross:>5}  {delay_s:>15}  {delay_a:>15}",
            file=stdout,
        )
    others = {d: n for d, n in result.false_by_detector.items() if d not in PRIMARY}
    if others:
        print(f"false alarms of other detectors: {others}", file=stdout)


def _summary(result: Evaluation) -> dict[str, Any]:
    return {
        "agents": result.agents,
        "fleet_hours": result.fleet_hours,
        "events": result.events,
        "anomalies": len(result.anomalies),
        "false_by_detector": result.false_by_detector,
        "critical_false": result.critical_false,
        "critical_false_per_fleet_hour": result.critical_false / result.fleet_hours,
        "types": {
            kind: {
                "faults": s.faults,
                "detected": s.detected,
                "recall": s.recall,
                "precision": s.precision,
                "f1": s.f1,
                "tp": s.tp,
                "fp": s.fp,
                "critical_fp": s.critical_fp,
                "cross": s.cross,
                "delay_s_p50": percentile(s.delays_s, 0.5),
                "delay_s_max": max(s.delays_s, default=None),
                "delay_actions_p50": percentile(s.delays_actions, 0.5),
                "delay_actions_max": max(s.delays_actions, default=None),
            }
            for kind, s in result.scores.items()
        },
    }


def _write(out: Path, scenario: Scenario, result: Evaluation, summary: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    start = scenario.start_ns
    with (out / "faults.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["kind", "agent", "start_s", "end_s", "detail", "detector", "severity", "delay_s"]
        )
        for fault, hit in zip(scenario.faults, result.matched, strict=True):
            writer.writerow(
                [
                    fault.kind,
                    fault.agent,
                    f"{(fault.start_ns - start) / 1e9:.3f}",
                    f"{(fault.end_ns - start) / 1e9:.3f}",
                    fault.detail,
                    hit.detector if hit else "",
                    str(hit.severity) if hit else "",
                    f"{(hit.detected_ns - fault.start_ns) / 1e9:.3f}" if hit else "",
                ]
            )
    with (out / "anomalies.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["detected_s", "agent", "detector", "severity", "score", "summary"])
        for a in result.anomalies:
            writer.writerow(
                [
                    f"{(a.detected_ns - start) / 1e9:.3f}",
                    a.agent,
                    a.detector,
                    str(a.severity),
                    f"{a.score:.3f}",
                    a.summary,
                ]
            )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
