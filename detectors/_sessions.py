"""A seeded generator of labelled agent sessions (synthetic), for the sequence backtest."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LabelledSessions", "synthetic_sessions"]

_DESTRUCTIVE = ("delete_repo", "drop_table", "rm_rf", "force_push", "revoke_keys")


def _research(rng: random.Random) -> list[str]:
    keys = ["plan"]
    for _ in range(rng.randint(1, 3)):
        keys.append("web_search")
        keys += ["read_page"] * rng.randint(1, 3)
    if rng.random() < 0.3:
        keys.append("take_notes")
    keys += ["summarize", "answer"]
    return keys


def _coding(rng: random.Random) -> list[str]:
    keys = ["plan"] + ["read_file"] * rng.randint(1, 4)
    if rng.random() < 0.4:
        keys.append("grep")
        keys += ["read_file"] * rng.randint(1, 2)
    keys += ["edit_file"] * rng.randint(1, 3)
    keys.append("run_tests")
    for _ in range(rng.randint(0, 2)):
        keys += ["edit_file"] * rng.randint(1, 2) + ["run_tests"]
    keys.append("commit")
    return keys


def _support(rng: random.Random) -> list[str]:
    keys = ["lookup_customer", "read_ticket"]
    keys += ["search_kb"] * rng.randint(1, 2)
    if rng.random() < 0.2:
        keys += ["escalate"]
    else:
        keys += ["draft_reply", "send_reply"]
    keys.append("close_ticket")
    return keys


_WORKFLOWS: tuple[Callable[[random.Random], list[str]], ...] = (_research, _coding, _support)
# Steps no run of the workflow goes without: skipping one is an anomaly.
_REQUIRED = frozenset(
    {"plan", "summarize", "answer", "run_tests", "commit", "read_ticket", "close_ticket"}
)


def _loop(rng: random.Random, keys: list[str]) -> list[str]:
    i = rng.randrange(len(keys))
    return keys[:i] + [keys[i]] * rng.randint(6, 12) + keys[i + 1 :]


def _skip(rng: random.Random, keys: list[str]) -> list[str]:
    required = [i for i, k in enumerate(keys) if k in _REQUIRED]
    i = rng.choice(required)
    return keys[:i] + keys[i + 1 :]


def _destructive(rng: random.Random, keys: list[str]) -> list[str]:
    i = rng.randrange(1, len(keys))
    return [*keys[:i], rng.choice(_DESTRUCTIVE), *keys[i:]]


def _reorder(rng: random.Random, keys: list[str]) -> list[str]:
    pairs = [i for i in range(len(keys) - 1) if keys[i] != keys[i + 1]]
    i = rng.choice(pairs)
    return [*keys[:i], keys[i + 1], keys[i], *keys[i + 2 :]]


FAULTS: dict[str, Callable[[random.Random, list[str]], list[str]]] = {
    "loop": _loop,
    "skip": _skip,
    "destructive": _destructive,
    "reorder": _reorder,
}


@dataclass(frozen=True, slots=True)
class LabelledSessions:
    """Normal training sessions and labelled test sessions.

    Attributes:
        train: Normal sessions, each a list of keys.
        test: Test sessions.
        labels: Per test session: True when a fault was injected.
        faults: Per test session: the fault's name, "" when normal.
    """

    train: list[list[str]]
    test: list[list[str]]
    labels: list[bool]
    faults: list[str]


def synthetic_sessions(
    seed: int = 0, *, n_train: int = 2000, n_test: int = 2000, anomaly_fraction: float = 0.2
) -> LabelledSessions:
    """Generates sessions of three agent workflows (research, coding, support) with variation.

    Normal sessions repeat steps a varying number of times and take optional steps. A test session
    is anomalous with probability ``anomaly_fraction``, with one fault drawn uniformly: a loop (a
    step repeated 6-12 times), a skipped required step, a destructive tool inserted, or two
    adjacent different steps swapped. A fault that happens to yield a session the workflow could
    produce normally (e.g. a swap of two optional steps) is still labelled anomalous.

    Args:
        seed: Seed of the generator.
        n_train: Normal training sessions.
        n_test: Test sessions.
        anomaly_fraction: Share of anomalous test sessions, in [0, 1].
    """
    if not 0 <= anomaly_fraction <= 1:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    rng = random.Random(seed)
    train = [rng.choice(_WORKFLOWS)(rng) for _ in range(n_train)]
    test: list[list[str]] = []
    faults: list[str] = []
    names = sorted(FAULTS)
    for _ in range(n_test):
        keys = rng.choice(_WORKFLOWS)(rng)
        fault = ""
        if rng.random() < anomaly_fraction:
            fault = rng.choice(names)
            keys = FAULTS[fault](rng, keys)
        test.append(keys)
        faults.append(fault)
    return LabelledSessions(train, test, [bool(f) for f in faults], faults)
