"""Cohorts' tool repertoires, shared by the demo's fleet and the scenario generator.

Each cohort (``service.name``) has a Markov chain over its tools: a research agent searches,
reads, summarises, takes notes... Arguments vary per call, so action fingerprints repeat only when
an agent really repeats itself. Pure data and a seeded argument maker: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = ["CHAINS", "DESTRUCTIVE_TOOLS", "tool_args"]

# cohort -> tool -> [(next tool, weight)]
CHAINS: Mapping[str, Mapping[str, list[tuple[str, int]]]] = {
    "research-agent": {
        "web_search": [("fetch_page", 6), ("web_search", 1), ("summarize", 1)],
        "fetch_page": [("summarize", 4), ("fetch_page", 2), ("web_search", 2)],
        "summarize": [("write_note", 4), ("web_search", 2), ("cite_source", 2)],
        "write_note": [("web_search", 3), ("cite_source", 1)],
        "cite_source": [("web_search", 2), ("write_note", 1)],
    },
    "support-agent": {
        "lookup_customer": [("search_kb", 5), ("get_orders", 3)],
        "get_orders": [("search_kb", 2), ("draft_reply", 3), ("issue_refund", 1)],
        "search_kb": [("draft_reply", 5), ("search_kb", 1), ("escalate_ticket", 1)],
        "draft_reply": [("send_reply", 6), ("search_kb", 1)],
        "send_reply": [("lookup_customer", 1)],
        "issue_refund": [("send_reply", 1)],
        "escalate_ticket": [("lookup_customer", 1)],
    },
    "coding-agent": {
        "read_file": [("grep_repo", 3), ("edit_file", 4), ("read_file", 2)],
        "grep_repo": [("read_file", 5), ("edit_file", 1)],
        "edit_file": [("run_tests", 5), ("read_file", 2)],
        "run_tests": [("edit_file", 3), ("git_commit", 2), ("read_file", 1)],
        "git_commit": [("read_file", 2), ("grep_repo", 1)],
    },
}

# cohort -> a destructive tool its agents have but rarely use (a decision-drift fault makes it
# dominant); not in CHAINS, so the demo's agents never call it.
DESTRUCTIVE_TOOLS: Mapping[str, str] = {
    "research-agent": "delete_notes",
    "support-agent": "delete_customer",
    "coding-agent": "force_push",
}

_TOPICS = ("solar", "tariffs", "protein folding", "rust async", "pricing", "latency", "churn")
_FILES = ("api.py", "models.py", "views.py", "README.md", "utils.py", "tests/test_api.py")


def tool_args(tool: str, rng: random.Random) -> dict[str, object]:
    """Plausible, varied arguments for a tool call (drawn from ``rng``)."""
    n = rng.randrange(100_000)
    if tool in ("web_search", "search_kb", "grep_repo"):
        return {"query": f"{rng.choice(_TOPICS)} {n}", "limit": rng.choice((5, 10, 20))}
    if tool in ("fetch_page", "cite_source"):
        return {"url": f"https://example.org/{rng.choice(_TOPICS).replace(' ', '-')}/{n}"}
    if tool in ("read_file", "edit_file"):
        return {"path": rng.choice(_FILES), "line": n % 400}
    if tool in ("lookup_customer", "get_orders", "issue_refund", "delete_customer"):
        return {"customer_id": f"c-{n}"}
    return {"text_sha": f"{n:05x}", "step": n}
