"""``agentwatch backtest history``: a detector configuration replayed on ClickHouse history."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agentwatch.collector import RunningService
from agentwatch.collector._cli import main
from tests.integration.test_detector_snapshot import PROTOBUF, SPIKE, WARM, _actions
from tests.support import local_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def history(data_dir: Path) -> Path:
    """A data directory holding a warm-up and a spike of agent a1 (the service stopped)."""
    with RunningService(local_settings(data_dir)) as running:
        for body in (_actions("a1", WARM), _actions("a1", SPIKE), _actions("b1", WARM)):
            url = f"{running.otlp_endpoint}/v1/traces"
            assert httpx.post(url, content=body, headers=PROTOBUF).is_success
        assert running.service.flush(10)
    return data_dir


def test_history_shows_what_the_settings_would_have_flagged(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["backtest", "history", "--data-dir", str(history), "--since", "2026-01-01T00:00:00Z",
            "--until", "2030-01-01T00:00:00Z"]  # fmt: skip
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "replayed 220 spans of 2 agents" in out  # 90 warm-up + 40 spike + 90 warm-up
    assert "action_rate  critical" in out
    assert "(recorded by the service: 2)" in out  # the live service flagged the same spike
    # A stricter configuration, tried before enabling it: the spike would only warn.
    assert main([*base, "--rate-critical-z", "50", "--rate-warning-z", "10"]) == 0
    stricter = capsys.readouterr().out
    assert "critical" not in stricter
    assert "action_rate  warning" in stricter
    # One cohort only.
    assert main([*base, "--service", "nobody"]) == 0
    assert "replayed 0 spans of 0 agents" in capsys.readouterr().out


def test_bad_times_are_refused_with_a_reason(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "history", "--data-dir", str(history), "--since", "yesterday"])
    assert code == 2
    assert "yesterday" in capsys.readouterr().err


def test_pages_through_history_without_losing_or_repeating_spans(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentwatch.collector import _history

    monkeypatch.setattr(_history, "PAGE", 17)  # many pages, page edges inside equal timestamps
    args = ["backtest", "history", "--data-dir", str(history), "--since", "2026-01-01T00:00:00Z",
            "--until", "2030-01-01T00:00:00Z"]  # fmt: skip
    assert main(args) == 0
    assert "replayed 220 spans of 2 agents" in capsys.readouterr().out


def test_replayed_rows_carry_the_span_duration(history: Path) -> None:
    from agentwatch.collector import Storage, embedded_dsn
    from agentwatch.collector._history import _spans
    from agentwatch.collector._normalize import to_event
    from agentwatch.collector._query import StorageSource

    storage = Storage(embedded_dsn(history))
    try:
        rows = list(_spans(StorageSource(storage), 0, 2**62, None))
    finally:
        storage.close()
    assert len(rows) == 220
    # Decision latency comes from Duration: without it a replay never sees a slow decision.
    assert {to_event(row).duration_s for row in rows} == {1e-6}  # the spans last 1,000 ns


def test_history_shows_what_session_patterns_would_have_flagged(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentwatch.sdk import init

    with RunningService(local_settings(data_dir)) as running:
        agent = init(
            "researchers", instance_id="r1", endpoint=running.otlp_endpoint, control_server=False
        )
        try:
            steps = [["search", "read", "answer"]] * 30 + [["search", "drop_table", "answer"]]
            for i, tools in enumerate([*steps, ["search", "read", "answer"]]):
                with agent.session("research", conversation_id=f"c{i}"):
                    for tool in tools:
                        with agent.action(tool, args={"i": i}):
                            pass
            assert agent.force_flush(10_000)
        finally:
            agent.shutdown()
        assert running.service.flush(10)
    base = ["backtest", "history", "--data-dir", str(data_dir), "--since", "1h"]
    assert main(base) == 0
    assert "session_pattern" not in capsys.readouterr().out  # off unless asked for
    assert main([*base, "--session-patterns", "--session-min-sessions", "20"]) == 0
    out = capsys.readouterr().out
    assert "session_pattern" in out
    assert "c30" in out  # the session with the destructive call, by its conversation id
    assert main([*base, "--session-patterns", "--session-min-sessions", "0"]) == 2
