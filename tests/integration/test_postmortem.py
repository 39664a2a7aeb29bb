"""``agentwatch postmortem`` on a realistic incident: facts, both formats, both paths."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from agentwatch.collector._postmortem import (
    NS,
    add_postmortem_arguments,
    build_report,
    parse_time,
    run_postmortem,
)
from agentwatch.collector._query import QueryError, open_directory
from tests.support import local_settings

from .incident import LOST, RUNAWAY, Incident, data_dir_with_incident, serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Incident]:
    path = tmp_path_factory.mktemp("postmortem")
    return path, data_dir_with_incident(path)


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_postmortem_arguments(parser)
    return parser.parse_args(argv)


def test_the_report_tells_the_incident(incident: tuple[Path, Incident]) -> None:
    path, inc = incident
    source = open_directory(path)
    try:
        report = build_report(source, RUNAWAY, inc.loop_ns - 600 * NS, inc.closed_ns + 60 * NS)
    finally:
        source.close()
    assert report.service == "research-agent"
    tools = {t.tool: t for t in report.tools}
    assert tools["http_request"].calls == 60
    assert tools["web_search"].distinct_calls < tools["web_search"].calls  # the loop
    assert [a["detector"] for a in report.anomalies] == ["loop", "action_rate"]
    assert report.anomalies[1]["baseline"] == "expected_mean=0.2, expected_std=0.4"
    assert [e.breaker_state for e in report.breaker_transitions] == ["open", "open", "closed"]
    assert [e.kind for e in report.deliveries if not e.ok] == ["slack"]
    (rollback,) = report.rollbacks
    assert rollback.action == f"rollback:{RUNAWAY}-ckpt-200"
    breaker, rolled = report.recoveries
    assert breaker.rto_s == pytest.approx((inc.closed_ns - inc.opened_ns) / NS)
    assert rolled.checkpoint_id == f"{RUNAWAY}-ckpt-200" and rolled.rpo_steps == 60
    assert {s for _, s, _ in report.heartbeats} == {"running", "paused"}
    assert report.transitions and report.checkpoints
    kinds = [e.kind for e in report.timeline]
    assert kinds.index("onset") < kinds.index("anomaly") < kinds.index("breaker")


def test_a_lost_agent_shows_its_heartbeat_gap(incident: tuple[Path, Incident]) -> None:
    path, inc = incident
    source = open_directory(path)
    try:
        report = build_report(source, LOST[0], inc.start_ns, inc.end_ns)
    finally:
        source.close()
    (gap,) = report.gaps
    assert gap.end_ns == inc.end_ns and gap.seconds > 7 * 60
    assert "no heartbeat for" in report.to_markdown()


def test_markdown_and_self_contained_html(incident: tuple[Path, Incident]) -> None:
    path, inc = incident
    source = open_directory(path)
    try:
        report = build_report(source, RUNAWAY, inc.loop_ns - 600 * NS, inc.closed_ns + 60 * NS)
    finally:
        source.close()
    markdown = report.to_markdown()
    for title in ("Actions by tool", "Heartbeats", "State transitions", "Anomalies",
                  "Breaker transitions", "Rollbacks", "Recovery (RTO / RPO)",
                  "Alert and remediation deliveries", "Timeline"):  # fmt: skip
        assert f"\n## {title}\n" in markdown
    assert "| breaker | " in markdown and "HTTP 500 from Slack after 4 attempts" in markdown
    page = report.to_html()
    assert page.startswith("<!doctype html>")
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)) == 3
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched
    assert "<script" not in page


def test_the_command_via_directory_and_via_api_agree(
    incident: tuple[Path, Incident], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = incident
    out = tmp_path / "pm.html"
    argv = ("--incident", "anom-rate-0002", "--format", "html", "--out", str(out))
    assert run_postmortem(args(*argv, "--data-dir", str(path))) == 0
    assert out.read_text().count("data:image/png;base64,") == 3
    assert run_postmortem(args("--incident", "anom-rate-0002", "--data-dir", str(path))) == 0
    direct = capsys.readouterr().out
    with serve(local_settings(path, api_token="t")) as (_, api, _otlp):
        environ = {"AGENTWATCH_API_TOKEN": "t"}
        code = run_postmortem(args("--incident", "anom-rate-0002", "--api", api), environ=environ)
        assert code == 0
        via_api = capsys.readouterr().out
        assert run_postmortem(args("--agent", RUNAWAY, "--api", api), environ={}) == 1
        assert "AGENTWATCH_API_TOKEN" in capsys.readouterr().err

    def strip(text: str) -> str:
        return re.sub(r"\*\*Generated\*\*: .*", "", text)

    assert strip(via_api) == strip(direct)
    assert f"# Post-mortem: {RUNAWAY}" in direct


def test_bad_arguments_say_what_to_do(
    incident: tuple[Path, Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(incident[0])
    assert run_postmortem(args("--data-dir", path)) == 1
    assert "--agent ID" in capsys.readouterr().err
    assert run_postmortem(args("--incident", "nope", "--data-dir", path)) == 1
    assert "no anomaly 'nope'" in capsys.readouterr().err
    assert run_postmortem(args("--agent", "a", "--since", "yesterday", "--data-dir", path)) == 1
    assert "neither RFC 3339 nor an age" in capsys.readouterr().err


def test_parse_time() -> None:
    now = 1_700_000_000 * NS
    assert parse_time("90s", now) == now - 90 * NS
    assert parse_time("2h", now) == now - 7200 * NS
    assert parse_time("2023-11-14T22:13:20Z", now) == now
    with pytest.raises(QueryError, match="time zone"):
        parse_time("2023-11-14T22:13:20", now)
