"""``agentwatch backtest`` end to end on files: a NAB subset and data with known scores."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pytest

from agentwatch.collector._backtest import add_backtest_arguments, run_backtest

pytestmark = pytest.mark.integration

NAB = Path("/work/shared/datasets/nab")
SUBSET = [
    "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "realAdExchange/exchange-3_cpc_results.csv",
    "realKnownCause/rogue_agent_key_hold.csv",
]


def _backtest(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agentwatch backtest")
    add_backtest_arguments(parser)
    return run_backtest(parser.parse_args(argv))


def _table(out: str) -> dict[str, float]:
    rows = [line.split() for line in out.splitlines()]
    return {r[0]: float(r[1]) for r in rows if r and r[0].startswith(("standard", "reward_"))}


@pytest.mark.skipif(not NAB.is_dir(), reason="the NAB subset is not available")
def test_nab_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    data = tmp_path / "data"
    for name in SUBSET:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / name, data / name)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({name: windows[name] for name in SUBSET}))

    assert (
        _backtest(
            "nab", "--data", str(data), "--labels", str(labels), "--out", str(tmp_path / "out")
        )
        == 0
    )

    captured = capsys.readouterr()
    scores = _table(captured.out)
    assert set(scores) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert all(-1000 < s <= 100 for s in scores.values())
    assert "[3/3]" in captured.err
    for name in SUBSET:
        with (tmp_path / "out" / name).open(newline="") as f:
            rows = list(csv.reader(f))
        with (data / name).open(newline="") as f:
            n_rows = sum(1 for _ in f)
        assert rows[0] == ["timestamp", "value", "anomaly_score", "label"]
        assert len(rows) == n_rows
        assert {r[3] for r in rows[1:]} == {"0", "1"}
        assert all(0.0 <= float(r[2]) <= 1.0 for r in rows[1:])


def _write_series(path: Path, values: list[float]) -> list[str]:
    stamps = [f"2024-01-01 00:{m // 60:02d}:{m % 60:02d}" for m in range(len(values))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "value"])
        writer.writerows(zip(stamps, values, strict=True))
    return stamps


def test_spike_at_window_edge_scores_100(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A flat series with one huge spike exactly at the window's left edge: the detector fires
    # there and nowhere else, which is the perfect detector, 100 under every profile.
    values = [5.0] * 2000
    values[1200] = 500.0
    stamps = _write_series(tmp_path / "data" / "synthetic" / "spike.csv", values)
    # and a file with no window: nothing must fire there
    _write_series(tmp_path / "data" / "synthetic" / "flat.csv", [5.0] * 2000)
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {"synthetic/spike.csv": [[stamps[1200], stamps[1299]]], "synthetic/flat.csv": []}
        )
    )
    code = _backtest(
        "nab",
        "--data",
        str(tmp_path / "data"),
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0
    scores = _table(capsys.readouterr().out)
    assert scores == pytest.approx(
        {"standard": 100.0, "reward_low_FP_rate": 100.0, "reward_low_FN_rate": 100.0}
    )


def test_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"nope.csv": []}))
    assert (
        _backtest("nab", "--data", str(tmp_path), "--labels", str(labels), "--out", str(tmp_path))
        == 2
    )
    assert "nope.csv" in capsys.readouterr().err


def test_sequences_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _backtest("sequences", "--synthetic", str(tmp_path), "--seed", "3") == 0
    out = capsys.readouterr().out
    f1 = float(out.split("F1 ")[1].split()[0])
    assert f1 >= 0.95
    # and the files it wrote work as plain input
    code = _backtest(
        "sequences",
        "--train", str(tmp_path / "train.txt"),
        "--test", str(tmp_path / "test.txt"),
        "--labels", str(tmp_path / "labels.txt"),
    )  # fmt: skip
    assert code == 0
    assert f"F1 {f1:.3f}" in capsys.readouterr().out


def test_sequences_needs_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert _backtest("sequences") == 2
    assert "--synthetic" in capsys.readouterr().err
