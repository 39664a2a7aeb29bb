"""``agentwatch query`` and the ten recipes of docs/recipes.md, on a realistic incident."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentwatch.collector._query import (
    ApiSource,
    QueryError,
    add_query_arguments,
    format_table,
    open_directory,
    run_query,
)
from tests.support import local_settings

from .incident import COHORT_DEPLOYED, LOST, RUNAWAY, Incident, data_dir_with_incident, serve

pytestmark = pytest.mark.integration
RECIPES = Path(__file__).parents[2] / "docs" / "recipes.md"
PARAMS = {"agent": RUNAWAY, "cohort": COHORT_DEPLOYED, "version": "1.1"}


def recipes() -> list[tuple[str, str]]:
    text = RECIPES.read_text()
    found = re.findall(r"^## (\d+)\. (.+?)$.*?```sql\n(.*?)```", text, re.S | re.M)
    return [(f"{n}-{title}", sql) for n, title, sql in found]


def params_of(sql: str) -> dict[str, str]:
    return {name: PARAMS[name] for name in re.findall(r"\{(\w+):\w+\}", sql)}


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Incident]:
    path = tmp_path_factory.mktemp("incident")
    return path, data_dir_with_incident(path)


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_query_arguments(parser)
    return parser.parse_args(argv)


def test_the_doc_has_ten_recipes() -> None:
    assert len(recipes()) == 10


# What each recipe must find in the generated incident (a column value in some row).
EXPECTED = {
    "1": RUNAWAY and "http_request",
    "2": "bulk_refund",
    "3": LOST[0],
    "4": "TimeoutError",
    "5": "agent",
    "6": "f" * 16,
    "7": "liveness",
    "8": "HTTP 500 from Slack after 4 attempts",
    "9": "agentwatch",
    "10": COHORT_DEPLOYED,
}


@pytest.mark.parametrize(("name", "sql"), recipes(), ids=[n for n, _ in recipes()])
def test_each_recipe_returns_rows(incident: tuple[Path, Incident], name: str, sql: str) -> None:
    source = open_directory(incident[0])
    try:
        result = source.query(sql, params_of(sql))
    finally:
        source.close()
    assert result.rows, f"recipe {name} returned nothing"
    flat = json.dumps([[str(v) for v in row] for row in result.rows])
    number = name.split("-", 1)[0]
    assert EXPECTED[number] in flat or number in ("5", "9"), (name, flat[:500])


def test_heartbeats_lost_together_names_both_agents(incident: tuple[Path, Incident]) -> None:
    sql = dict(recipes())[next(n for n, _ in recipes() if n.startswith("3-"))]
    source = open_directory(incident[0])
    try:
        rows = source.query(sql).rows
    finally:
        source.close()
    assert [(row[0], row[3]) for row in rows] == [(LOST[0], [LOST[1]]), (LOST[1], [LOST[0]])]


def test_table_csv_and_json_output(
    incident: tuple[Path, Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "SELECT Detector, count() AS n, max(Score) AS top FROM agentwatch_anomalies"
        " GROUP BY Detector ORDER BY Detector"
    )
    assert run_query(args(sql, "--data-dir", str(incident[0]))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Detector", "n", "top"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["action_rate", "1", "41.3"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    assert lines[-1] == "(3 rows)"
    assert run_query(args(sql, "--data-dir", str(incident[0]), "--format", "csv")) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["Detector,n,top", "action_rate,1,41.3"]
    assert run_query(args(sql, "--data-dir", str(incident[0]), "--format", "json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[2] == {"Detector": "loop", "n": 1, "top": 3.0}


def test_max_rows_stops_early_and_says_so(
    incident: tuple[Path, Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("SELECT number FROM system.numbers", "--data-dir", str(incident[0]), "--max-rows", "3")
    assert run_query(args(*argv)) == 0
    out = capsys.readouterr().out
    assert "(3 rows; stopped at 3: add a LIMIT or raise --max-rows)" in out


def test_writes_are_refused(
    incident: tuple[Path, Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "INSERT INTO agentwatch_anomalies (Id) VALUES ('x')"
    assert run_query(args(sql, "--data-dir", str(incident[0]))) == 1
    assert "readonly" in capsys.readouterr().err


def test_errors_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_query(args("SELECT 1", "--data-dir", str(tmp_path / "nowhere"))) == 1
    assert "no agentwatch data in" in capsys.readouterr().err
    assert run_query(args("SELECT 1", "--param", "1x=2", "--data-dir", str(tmp_path))) == 1
    assert "--param must be NAME=VALUE" in capsys.readouterr().err
    assert run_query(args("SELECT 1", "--api", "http://127.0.0.1:9")) == 1
    assert "cannot reach the agentwatch API" in capsys.readouterr().err


def test_format_table_cuts_wide_cells() -> None:
    from agentwatch.collector._query import QueryResult

    text = format_table(QueryResult(["a", "b"], [[1, "x" * 100], [22, {"k": "v"}]]), max_width=10)
    assert text.splitlines()[2] == " 1  xxxxxxxxx…"
    assert '{"k":"v"}' in text


@pytest.fixture
def served(incident: tuple[Path, Incident]) -> Iterator[str]:
    with serve(local_settings(incident[0], api_token="admin-t")) as (_, api, _otlp):
        yield api


def test_the_api_runs_recipes_read_only_behind_the_token(served: str) -> None:
    source = ApiSource(served, token="admin-t")
    try:
        for name, sql in recipes():
            assert source.query(sql, params_of(sql)).rows, name
    finally:
        source.close()
    url = f"{served}/api/v1/query"
    assert httpx.post(url, json={"sql": "SELECT 1"}).status_code == 401
    auth = {"authorization": "Bearer admin-t"}
    insert = {"sql": "INSERT INTO agentwatch_anomalies (Id) VALUES ('x')"}
    refused = httpx.post(url, json=insert, headers=auth)
    assert refused.status_code == 403
    for sneaky in (
        "INSERT INTO agentwatch_anomalies (Id) SETTINGS readonly = 0 VALUES ('x')",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT `url`/* */('http://127.0.0.1:9/', 'LineAsString')",
        "DROP TABLE agentwatch_anomalies",
    ):
        assert httpx.post(url, json={"sql": sneaky}, headers=auth).status_code == 403, sneaky
    bad = httpx.post(url, json={"sql": "SELEC nonsense"}, headers=auth)
    assert bad.status_code == 400 and "Syntax error" in bad.json()["detail"]
    capped = httpx.post(
        url, json={"sql": "SELECT number FROM system.numbers", "max_rows": 5}, headers=auth
    ).json()
    assert (capped["row_count"], capped["truncated"]) == (5, True)


def test_a_locked_directory_points_at_the_api(incident: tuple[Path, Incident], served: str) -> None:
    # This process holds the directory (the running service); another one cannot open it.
    script = textwrap.dedent(
        f"""
        import argparse, sys
        from agentwatch.collector._query import add_query_arguments, run_query
        parser = argparse.ArgumentParser()
        add_query_arguments(parser)
        sys.exit(run_query(parser.parse_args(["SELECT 1", "--data-dir", {str(incident[0])!r}])))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "a service is running on this directory; use --api http://127.0.0.1:8080" in (
        done.stderr
    )


def test_query_error_is_an_agentwatch_error() -> None:
    from agentwatch.sdk import AgentwatchError

    assert issubclass(QueryError, AgentwatchError)
