"""Alertmanager's behaviour, end to end on virtual time, at real loopback receivers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .acceptance import NS, T0, Acceptance
from .conftest import LoopbackReceiver

T0_NS = int(T0 * NS)


@pytest.fixture
def servers() -> Iterator[dict[str, LoopbackReceiver]]:
    made = {name: LoopbackReceiver() for name in ("default", "pager")}
    yield made
    for server in made.values():
        server.close()


ROUTE = {
    "receiver": "default",
    "group_by": ["agent"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
    "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
        {"matchers": ['agent=~".+"'], "receiver": "default"},
    ],
}


def test_group_wait_grouping_interval_and_repeat(
    tmp_path: Path, servers: dict[str, LoopbackReceiver]
) -> None:
    t = Acceptance(tmp_path, {"route": ROUTE, "resolve_timeout": "1d"}, servers)
    t.push(0, alertname="loop", agent="a1", severity="warning")
    t.push(10, alertname="cost", agent="a1", severity="warning")  # same group, before group_wait
    t.push(100, alertname="drift", agent="a1", severity="warning")  # after: next group_interval
    t.run(until=5 * 3600)
    got = t.expect("default", (30, 30), (330, 330), (330 + 4 * 3600 + 300, 330 + 4 * 3600 + 300))
    first, second, repeat = (g.payload for g in got)
    assert [a["labels"]["alertname"] for a in first["alerts"]] == ["cost", "loop"]
    assert first["notification_reason"] == "new_firing_alerts"
    assert len(second["alerts"]) == 3 and second["groupKey"] == '{}/{agent=~".+"}:{agent="a1"}'
    assert repeat["notification_reason"] == "repeat_interval_elapsed"
    t.expect("pager")  # nothing critical


def test_resolve_and_resolve_timeout(tmp_path: Path, servers: dict[str, LoopbackReceiver]) -> None:
    t = Acceptance(tmp_path, {"route": ROUTE, "resolve_timeout": "5m"}, servers)
    t.push(0, alertname="loop", agent="a1", severity="critical")
    t.push(0, alertname="loop", agent="a2", severity="critical")
    t.resolve(60, alertname="loop", agent="a1", severity="critical")
    t.run(until=3600)
    # a1: fired at 30, resolved at 60, told at the next flush (330); a2: timed out at 300.
    pager = t.got["pager"]
    assert sorted(
        (g.at, g.payload["groupLabels"]["agent"], g.payload["status"]) for g in pager
    ) == [
        (30, "a1", "firing"),
        (30, "a2", "firing"),
        (330, "a1", "resolved"),
        (330, "a2", "resolved"),
    ]
    assert len(t.got["default"]) == 4  # continue: true sent the same to the root receiver
    resolved = next(g.payload for g in pager if g.payload["status"] == "resolved")
    assert resolved["notification_reason"] == "all_resolved"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_silence_and_inhibition(tmp_path: Path, servers: dict[str, LoopbackReceiver]) -> None:
    config = {
        "route": ROUTE,
        "resolve_timeout": "1d",
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["agent"],
            }
        ],
    }
    t = Acceptance(tmp_path, config, servers)
    ten_minutes = 600 * 10**9
    t.at(0, lambda: t.manager.silences.create(['agent="a3"'], ends_at_ns=T0_NS + ten_minutes))
    t.push(0, alertname="loop", agent="a1", severity="critical")
    t.push(0, alertname="cost", agent="a1", severity="warning")  # inhibited by a1's critical
    t.push(0, alertname="cost", agent="a2", severity="warning")  # not inhibited
    t.push(0, alertname="cost", agent="a3", severity="warning")  # silenced for 10 minutes
    t.run(until=1000)
    default = {g.payload["groupLabels"]["agent"]: g for g in t.got["default"]}
    assert [a["labels"]["alertname"] for a in default["a1"].payload["alerts"]] == ["loop"]
    assert default["a2"].at == 30
    assert default["a3"].at == 630  # the first flush after the silence expired
    assert len(t.got["default"]) == 3 and len(t.got["pager"]) == 1


def test_restart_does_not_notify_again(
    tmp_path: Path, servers: dict[str, LoopbackReceiver]
) -> None:
    t = Acceptance(tmp_path, {"route": ROUTE, "resolve_timeout": "1d"}, servers)
    t.push(0, alertname="loop", agent="a1", severity="warning")
    t.run(until=60)
    t.manager = t.make_manager()  # a restart: the nflog is reloaded, sources re-send alerts
    t.push(61, alertname="loop", agent="a1", severity="warning")
    t.run(until=3600)
    t.expect("default", (30, 30))


def test_receiver_500_then_recovers_and_429_retry_after(
    tmp_path: Path, servers: dict[str, LoopbackReceiver]
) -> None:
    servers["default"].respond((500, {}), (500, {}), (429, {"Retry-After": "120"}))
    t = Acceptance(tmp_path, {"route": ROUTE, "resolve_timeout": "1d"}, servers)
    t.push(0, alertname="loop", agent="a1", severity="warning")
    t.run(until=600)
    [got] = t.expect("default", (150, 160))  # 30 + ~0.5 + ~0.75 backoff, then 120 s wait
    attempts = servers["default"].requests
    assert [r.status for r in attempts] == [500, 500, 429, 200]
    assert len({r.headers["webhook-id"] for r in attempts}) == 1  # the same id on every attempt
    assert got.payload["version"] == "4"
