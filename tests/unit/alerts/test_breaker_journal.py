"""Breaker state persists as a journal: one line per change, compacted, crash-tolerant."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.alerts import AgentBreakers, _breaker


def test_state_survives_a_restart_through_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "breakers.json"
    breakers = AgentBreakers(path, clock=lambda: 1)
    breakers.force_open("a1", "kill switch")
    breakers.force_open("a2", "kill switch")
    breakers.close("a2", "fixed")
    assert not path.exists()  # nothing compacted yet: only the journal was written
    reopened = AgentBreakers(path, clock=lambda: 2)
    assert (reopened.state("a1"), reopened.state("a2")) == ("forced_open", "closed")
    assert reopened.status("a2").version == 2


def test_the_journal_is_compacted_and_a_torn_line_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_breaker, "_COMPACT_EVERY", 3)
    path = tmp_path / "breakers.json"
    breakers = AgentBreakers(path, clock=lambda: 1)
    for agent in ("a1", "a2", "a3", "a4"):
        breakers.force_open(agent, "x")
    journal = path.with_name(path.name + ".journal")
    assert path.exists()  # folded after the 3rd line
    assert len(journal.read_text().splitlines()) == 1  # a4 only
    with open(journal, "a") as f:
        f.write('{"agent": "a5", "state": "op')  # a crash in the middle of a write
    reopened = AgentBreakers(path, clock=lambda: 2)
    assert [reopened.state(a) for a in ("a1", "a2", "a3", "a4")] == ["forced_open"] * 4
    assert reopened.state("a5") == "closed"  # the torn line is skipped, not fatal
