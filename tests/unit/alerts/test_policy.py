from __future__ import annotations

import pytest

from agentwatch.alerts import RemediationPolicy, severity_rank
from agentwatch.sdk.semconv import BREAKER_OPEN, CONTROL_TYPE_BREAKER

from .conftest import FakeAnomaly


def opens(policy: RemediationPolicy, severity: str, detector: str = "loop") -> bool:
    commands = policy.decide(FakeAnomaly(severity=severity, detector=detector))
    return [(c.type, c.state) for c in commands] == [(CONTROL_TYPE_BREAKER, BREAKER_OPEN)]


def test_default_opens_on_critical_only() -> None:
    policy = RemediationPolicy()
    assert opens(policy, "critical")
    assert not opens(policy, "warning")
    assert not opens(policy, "info")


def test_lower_threshold() -> None:
    policy = RemediationPolicy(breaker_min_severity="warning")
    assert opens(policy, "critical") and opens(policy, "warning")
    assert not opens(policy, "info")


def test_per_detector_overrides_and_never() -> None:
    policy = RemediationPolicy(per_detector={"loop": "info", "liveness": "never"})
    assert opens(policy, "info", "loop")
    assert not opens(policy, "critical", "liveness")
    assert opens(policy, "critical", "action_rate")
    assert not opens(policy, "warning", "action_rate")
    assert policy.breaker_threshold("liveness") == "never"


def test_cohort_anomalies_call_for_no_command() -> None:
    policy = RemediationPolicy(
        "info",
        per_detector={"agent_count": "info"},
        rollback_min_severity="info",
        rollback_per_detector={"agent_count": "info"},
    )
    assert policy.decide(FakeAnomaly(agent="*", detector="agent_count")) == []
    assert len(policy.decide(FakeAnomaly(detector="liveness"))) == 2  # breaker and rollback


def test_never_globally() -> None:
    assert not opens(RemediationPolicy(breaker_min_severity="never"), "critical")


def test_command_carries_the_anomaly() -> None:
    anomaly = FakeAnomaly()
    [command] = RemediationPolicy().decide(anomaly, now_ns=42)
    assert command.agent == anomaly.agent
    assert command.anomaly_id == anomaly.id
    assert command.reason == "same tool call x5"
    assert command.issued_ns == 42


def test_missing_summary_gets_a_generic_reason() -> None:
    [command] = RemediationPolicy().decide(FakeAnomaly(evidence={}))
    assert command.reason == "loop anomaly on agent-1"


def test_unknown_anomaly_severity_does_nothing() -> None:
    assert RemediationPolicy(breaker_min_severity="info").decide(FakeAnomaly(severity="dire")) == []


def test_bad_threshold_names_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"breaker_min_severity .*'fatal'"):
        RemediationPolicy(breaker_min_severity="fatal")
    with pytest.raises(ValueError, match=r"per_detector\['loop'\]"):
        RemediationPolicy(per_detector={"loop": "CRITICAL"})


def test_per_detector_is_copied() -> None:
    overrides = {"loop": "info"}
    policy = RemediationPolicy(per_detector=overrides)
    overrides["loop"] = "never"
    assert policy.breaker_threshold("loop") == "info"


def test_enum_severities_rank() -> None:
    types = pytest.importorskip("agentwatch.detectors._types")
    assert [severity_rank(s) for s in types.Severity] == [0, 1, 2]
    assert severity_rank("critical") == 2 and severity_rank("bogus") is None
