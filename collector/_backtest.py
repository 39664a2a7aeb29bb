"""``agentwatch backtest``: run detectors offline over files and score them against labels.

Datasets: ``nab`` (``timestamp,value`` CSV files in the Numenta Anomaly Benchmark's layout,
scored with NAB's three profiles), ``sequences`` (sessions of event keys, one per line, as in
DeepLog, scored with precision, recall and F1), ``scenarios`` (a simulated fleet with labelled
injected faults through the whole per-agent pipeline, scored per fault type) and ``history``
(ClickHouse replay, in ``_history``). File reading and printing live here; the detectors, the
simulation and the scoring are pure (:mod:`agentwatch.detectors`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TextIO

from agentwatch.detectors import SeriesDetector, TransitionModel
from agentwatch.detectors._nab import PROFILES, FileLabels, label_rows, score_corpus
from agentwatch.detectors._sequence import precision_recall_f1
from agentwatch.detectors._sessions import synthetic_sessions

from ._history import add_history_arguments, run_history
from ._scenarios_cli import add_scenarios_arguments, run_scenarios

__all__ = ["add_backtest_arguments", "run_backtest"]

_NAB_EPILOG = """\
example (the NAB subset shipped with the datasets):
  agentwatch backtest nab --data datasets/nab/data \\
      --labels datasets/nab/labels/combined_windows.json --out results/nab
"""

_SEQUENCES_EPILOG = """\
examples:
  agentwatch backtest sequences --train normal.txt --test test.txt --labels test_labels.txt
  agentwatch backtest sequences --synthetic out/sessions   # generate a labelled set, then score it
"""


def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``nab`` and ``sequences`` sub-commands to the ``backtest`` parser."""
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    nab = datasets.add_parser(
        "nab",
        help="score the time-series detector on NAB-layout CSV files",
        description=(
            "Run the time-series detector (SeriesDetector, one configuration for every file)\n"
            "over timestamp,value CSV files, write NAB results files (timestamp,value,\n"
            "anomaly_score,label) and print NAB's standard, low-FP and low-FN scores, each at\n"
            "the threshold that maximises it over the whole corpus."
        ),
        epilog=_NAB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nab.add_argument("--data", type=Path, required=True, help="folder of <category>/<file>.csv")
    nab.add_argument(
        "--labels", type=Path, required=True, help="combined_windows.json: file -> [[start, end]]"
    )
    nab.add_argument("--out", type=Path, required=True, help="results CSVs are written here")
    add_history_arguments(datasets)
    seq = datasets.add_parser(
        "sequences",
        help="score the transition model on sessions of event keys",
        description=(
            "Train the transition model on normal sessions (one per line, space-separated keys,\n"
            "DeepLog's format), flag test sessions and print precision, recall and F1 against\n"
            "the labels (one 0 or 1 per test session)."
        ),
        epilog=_SEQUENCES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seq.add_argument("--train", type=Path, help="normal sessions, one per line")
    seq.add_argument("--test", type=Path, help="sessions to score, one per line")
    seq.add_argument("--labels", type=Path, help="one 0 (normal) or 1 (anomalous) per test line")
    seq.add_argument(
        "--synthetic",
        type=Path,
        metavar="DIR",
        help="write a synthetic labelled set (train.txt, test.txt, labels.txt) here and score it",
    )
    seq.add_argument("--seed", type=int, default=0, help="seed of --synthetic (default 0)")
    add_scenarios_arguments(datasets)


def run_backtest(args: argparse.Namespace) -> int:
    """Runs the chosen backtest; returns the exit status (0 ok, 2 bad input)."""
    try:
        if args.dataset == "history":
            return run_history(args)
        if args.dataset == "scenarios":
            return run_scenarios(args, sys.stdout, sys.stderr)
        if args.dataset == "nab":
            return _run_nab(args.data, args.labels, args.out, sys.stdout, sys.stderr)
        return _run_sequences(args, sys.stdout)
    except (OSError, ValueError, KeyError) as exc:
        print(f"agentwatch backtest: {exc}", file=sys.stderr)
        return 2


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip())


def _run_nab(data: Path, labels_path: Path, out: Path, stdout: TextIO, stderr: TextIO) -> int:
    windows: dict[str, list[list[str]]] = json.loads(labels_path.read_text(encoding="utf-8"))
    names = sorted(windows)
    corpus: list[tuple[FileLabels, list[float]]] = []
    for k, name in enumerate(names, 1):
        with (data / name).open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        timestamps = [_timestamp(r["timestamp"]) for r in rows]
        values = [float(r["value"]) for r in rows]
        labels = label_rows(timestamps, [(_timestamp(a), _timestamp(b)) for a, b in windows[name]])
        detector = SeriesDetector()
        scores = []
        for v in values:
            x = {"value": v}
            scores.append(detector.score_one(x))
            detector.learn_one(x)
        corpus.append((labels, scores))
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["timestamp", "value", "anomaly_score", "label"])
            for r, s, w in zip(rows, scores, labels.window, strict=True):
                writer.writerow([r["timestamp"], r["value"], repr(s), int(w >= 0)])
        print(f"[{k}/{len(names)}] {name}: {len(rows)} rows", file=stderr)
    print(f"NAB scores of SeriesDetector() over {len(names)} files", file=stdout)
    print(
        f"{'profile':<20} {'score':>6} {'threshold':>9} {'TP':>4} {'FN':>4} {'FP':>5}", file=stdout
    )
    for profile in PROFILES:
        result = score_corpus(corpus, profile)
        print(
            f"{profile.name:<20} {result.normalized:6.1f} {result.threshold:9.4f} "
            f"{result.tp:4d} {result.fn:4d} {result.fp:5d}",
            file=stdout,
        )
    return 0


def _read_sessions(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def _run_sequences(args: argparse.Namespace, stdout: TextIO) -> int:
    if args.synthetic is not None:
        sessions = synthetic_sessions(args.seed)
        folder: Path = args.synthetic
        folder.mkdir(parents=True, exist_ok=True)
        args.train, args.test, args.labels = (
            folder / "train.txt",
            folder / "test.txt",
            folder / "labels.txt",
        )
        args.train.write_text("".join(" ".join(s) + "\n" for s in sessions.train), "utf-8")
        args.test.write_text("".join(" ".join(s) + "\n" for s in sessions.test), "utf-8")
        args.labels.write_text("".join(f"{int(y)}\n" for y in sessions.labels), "utf-8")
    if args.train is None or args.test is None or args.labels is None:
        raise ValueError("give --train, --test and --labels, or --synthetic DIR")
    model = TransitionModel()
    for keys in _read_sessions(args.train):
        model.learn_one({"keys": keys})
    test = _read_sessions(args.test)
    labels = [line.strip() == "1" for line in args.labels.read_text("utf-8").splitlines()]
    flags = [model.score_one({"keys": keys}) >= model.threshold_nats for keys in test]
    result = precision_recall_f1(flags, labels)
    print(f"sessions: {len(test)} ({sum(labels)} labelled anomalous)", file=stdout)
    print(
        f"precision {result.precision:.3f}  recall {result.recall:.3f}  F1 {result.f1:.3f}  "
        f"(TP {result.tp}, FP {result.fp}, FN {result.fn}, TN {result.tn})",
        file=stdout,
    )
    return 0
