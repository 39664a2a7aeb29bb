"""``agentwatch backtest scenarios`` end to end: a small simulated fleet, its table and files."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from agentwatch.collector._backtest import add_backtest_arguments, run_backtest
from agentwatch.detectors._scenarios import FAULT_TYPES

pytestmark = pytest.mark.integration


def _backtest(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agentwatch backtest")
    add_backtest_arguments(parser)
    return run_backtest(parser.parse_args(argv))


def test_scenarios_prints_every_fault_type_and_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["scenarios", "--agents", "30", "--hours", "0.4", "--normal-hours", "0.1"]
    assert _backtest(*argv, "--seed", "2", "--out", str(out)) == 0
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines() if line.strip()}
    for kind in FAULT_TYPES:
        faults, recall, precision, f1 = rows[kind][1:5]
        assert int(faults) >= 1
        assert 0.0 <= float(recall) <= 1.0 and 0.0 <= float(precision) <= 1.0
        assert 0.0 <= float(f1) <= 1.0
    assert "breaker-opening (CRITICAL) false alarms:" in captured.out
    assert "issue's delay targets: loops by the 3rd repeat " in captured.out
    assert "of simulated time" in captured.err  # progress lines

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["faulted"]["types"]) == set(FAULT_TYPES)
    targets = summary["faulted"]["targets"]
    assert len(targets) == 3
    assert all(0 <= t["met"] <= t["faults"] for t in targets.values())
    spikes = summary["faulted"]["types"]["rate_spike"]
    assert targets["5x rate spikes within 2 s"]["faults"] == spikes["faults"]
    assert summary["normal"]["fleet_hours"] == pytest.approx(0.1)
    with (out / "faults.csv").open(newline="") as f:
        faults = list(csv.DictReader(f))
    assert len(faults) == sum(t["faults"] for t in summary["faulted"]["types"].values())
    detected = [r for r in faults if r["detector"]]
    assert len(detected) == sum(t["detected"] for t in summary["faulted"]["types"].values())
    assert all(float(r["delay_s"]) >= 0 for r in detected)
    with (out / "anomalies.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == summary["faulted"]["anomalies"]


def test_same_seed_same_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["scenarios", "--agents", "8", "--hours", "0.25", "--normal-hours", "0"]
    assert _backtest(*argv) == 0
    first = capsys.readouterr().out
    assert _backtest(*argv) == 0
    assert capsys.readouterr().out == first
    assert "normal fleet" not in first


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert _backtest("scenarios", "--agents", "0") == 2
    assert "--agents must be >= 1" in capsys.readouterr().err
    assert _backtest("scenarios", "--agents", "3", "--fault-share", "2") == 2
    assert "fault_share" in capsys.readouterr().err
