"""Alertmanager's dedup rules (a table), the notification log and silences, persisted."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.alerts import NotificationLog, SilenceError, Silences, needs_update
from agentwatch.alerts._nflog import LogEntry

H = 3600 * 10**9
NOW = 100 * H


def entry(firing: set[str], resolved: set[str], at: int = NOW - H) -> LogEntry:
    return LogEntry("r", "g", frozenset(firing), frozenset(resolved), at)


@pytest.mark.parametrize(
    ("log", "firing", "resolved", "send_resolved", "reason"),
    [
        (None, {"a"}, set(), True, "new_firing_alerts"),
        (None, set(), {"a"}, True, None),  # never told: nothing to resolve
        (entry({"a"}, set()), {"a", "b"}, set(), True, "new_firing_alerts"),
        (entry({"a"}, set()), {"a"}, set(), True, None),  # unchanged, repeat not due
        (entry({"a", "b"}, set()), {"a"}, {"b"}, True, "new_resolved_alerts"),
        (entry({"a", "b"}, set()), {"a"}, {"b"}, False, None),
        (entry({"a"}, set()), set(), {"a"}, False, "all_resolved"),  # even without send_resolved
        (entry(set(), {"a"}), set(), {"a"}, True, None),
        (entry({"a"}, set(), at=NOW - 4 * H), {"a"}, set(), True, None),  # exactly 4h: not yet
        (entry({"a"}, set(), at=NOW - 4 * H - 1), {"a"}, set(), True, "repeat_interval_elapsed"),
    ],
)
def test_needs_update(
    log: LogEntry | None,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    reason: str | None,
) -> None:
    got = needs_update(
        log, firing, resolved, send_resolved=send_resolved, repeat_interval_ns=4 * H, now_ns=NOW
    )
    assert got == reason


def test_nflog_is_persisted_and_reloaded(tmp_path: Path) -> None:
    log = NotificationLog(tmp_path / "nflog.json")
    log.log("pd", "{}:{}", {"a"}, {"b"}, NOW)
    again = NotificationLog(tmp_path / "nflog.json")
    assert again.get("pd", "{}:{}") == LogEntry("pd", "{}:{}", frozenset("a"), frozenset("b"), NOW)
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def test_silence_lifecycle_and_persistence(tmp_path: Path) -> None:
    clock = Clock()
    silences = Silences(tmp_path / "silences.json", clock=clock)
    active = silences.create(['agent="a1"'], ends_at_ns=NOW + H, created_by="me", comment="x")
    pending = silences.create(['agent=~"b.*"'], starts_at_ns=NOW + H, ends_at_ns=NOW + 2 * H)
    assert silences.muted_by({"agent": "a1"}, NOW) == [active.id]
    assert silences.muted_by({"agent": "b1"}, NOW) == []
    assert [s.id for s in silences.list("pending")] == [pending.id]

    clock.now = NOW + H + 1
    assert silences.muted_by({"agent": "b1"}, clock.now) == [pending.id]
    assert {s.id for s in silences.list("expired")} == {active.id}

    reloaded = Silences(tmp_path / "silences.json", clock=clock)
    expired = reloaded.expire(pending.id)
    assert expired.state(clock.now) == "expired"
    with pytest.raises(SilenceError):
        reloaded.expire(pending.id)
    assert Silences(tmp_path / "silences.json", clock=clock).list("active") == []


def test_expiring_a_pending_silence_ends_it_before_it_starts() -> None:
    clock = Clock()
    silences = Silences(None, clock=clock)
    s = silences.create(["a=1"], starts_at_ns=NOW + H, ends_at_ns=NOW + 2 * H)
    done = silences.expire(s.id)
    assert (done.starts_at_ns, done.ends_at_ns) == (NOW, NOW)


@pytest.mark.parametrize("matchers", [[], ['a=""'], ['a=~".*"']])
def test_silences_must_match_something(matchers: list[str]) -> None:
    with pytest.raises(SilenceError):
        Silences(None, clock=Clock()).create(matchers, ends_at_ns=NOW + H)
