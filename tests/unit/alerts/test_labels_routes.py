"""Fingerprints, matchers, the routing tree and inhibition rules: table tests."""

from __future__ import annotations

from typing import Any

import pytest

from agentwatch.alerts import InhibitRule, Matcher, build_route, fingerprint, parse_duration


def test_fingerprint_is_prometheus_fnv1a() -> None:
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64 offset basis
    a = fingerprint({"alertname": "loop", "agent": "a1"})
    assert a == fingerprint({"agent": "a1", "alertname": "loop"})  # order-free
    assert a != fingerprint({"alertname": "loop", "agent": "a2"})
    assert len(a) == 16 and int(a, 16) >= 0


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity!="critical"', {}, True),
        ('severity=~"warn|crit"', {"severity": "crit"}, True),
        ('severity=~"warn|crit"', {"severity": "critical"}, False),  # anchored
        ('severity=~"crit.*"', {"severity": "critical"}, True),
        ('severity!~"crit.*"', {"severity": "critical"}, False),
        ('env=""', {}, True),  # a missing label is the empty string
        ("agent=a1", {"agent": "a1"}, True),  # quotes optional
        ('summary="say \\"hi\\""', {"summary": 'say "hi"'}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize("bad", ["", "x", "1a=b", 'a=~"("'])
def test_bad_matchers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Matcher.parse(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("4h", 14400), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


CONFIG: dict[str, Any] = {
    "receiver": "default",
    "group_by": ["alertname"],
    "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
        {
            "matchers": ['service=~"plan.*"'],
            "receiver": "planners",
            "group_by": ["..."],
            "group_wait": "10s",
            "routes": [{"matchers": ['env="prod"'], "receiver": "prod-planners"}],
        },
        {"matchers": ['service="coder"'], "receiver": "coders"},
    ],
}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "info"}, ["default"]),
        ({"severity": "critical"}, ["pager"]),  # a match with continue still counts
        ({"severity": "critical", "service": "planner"}, ["pager", "planners"]),
        ({"service": "planner", "env": "prod"}, ["prod-planners"]),
        ({"service": "coder"}, ["coders"]),
        ({"service": "planner", "env": "dev"}, ["planners"]),
    ],
)
def test_routing_tree(labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.receiver for r in build_route(CONFIG).match(labels)] == receivers


def test_inheritance_defaults_and_group_keys() -> None:
    root = build_route(CONFIG)
    assert (root.group_wait_s, root.group_interval_s, root.repeat_interval_s) == (30, 300, 14400)
    planners = root.routes[1]
    prod = planners.routes[0]
    assert prod.group_wait_s == 10 and prod.group_by == ("...",) and prod.group_interval_s == 300
    labels = {"alertname": "loop", "agent": "a1", "service": "planner", "env": "prod"}
    assert prod.group_labels(labels) == labels
    assert root.group_key(root.group_labels(labels)) == '{}:{alertname="loop"}'
    assert prod.key == '{}/{service=~"plan.*"}/{env="prod"}'


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"route.routes\[0\].group_wait"):
        build_route({"receiver": "r", "routes": [{"group_wait": "soon"}]})
    with pytest.raises(ValueError, match="receiver"):
        build_route({})


RULE = InhibitRule.from_dict(
    {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["agent"],
    }
)


@pytest.mark.parametrize(
    ("target", "sources", "inhibited"),
    [
        ({"severity": "warning", "agent": "a"}, [{"severity": "critical", "agent": "a"}], True),
        ({"severity": "warning", "agent": "a"}, [{"severity": "critical", "agent": "b"}], False),
        ({"severity": "info", "agent": "a"}, [{"severity": "critical", "agent": "a"}], False),
        ({"severity": "warning"}, [{"severity": "critical"}], True),  # both missing: equal
        ({"severity": "warning", "agent": "a"}, [], False),
    ],
)
def test_inhibition(target: dict[str, str], sources: list[dict[str, str]], inhibited: bool) -> None:
    assert RULE.inhibits(target, [target, *sources]) is inhibited


def test_an_alert_does_not_inhibit_itself() -> None:
    rule = InhibitRule.from_dict({"source_matchers": ["a=1"], "target_matchers": ["a=1"]})
    assert not rule.inhibits({"a": "1"}, [{"a": "1"}])
