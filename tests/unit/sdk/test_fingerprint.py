from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwatch.sdk import fingerprint
from agentwatch.sdk._fingerprint import MAX_CANONICAL_CHARS, canonical_json


class Opaque:
    pass


ARGS = {"query": "weather in Paris", "limit": 5, "filters": {"lang": "en", "safe": True}}


def test_fingerprint_is_16_hex_digits() -> None:
    value = fingerprint("web_search", ARGS)
    assert len(value) == 16
    int(value, 16)


def test_argument_order_does_not_matter() -> None:
    reordered = {"filters": {"safe": True, "lang": "en"}, "limit": 5, "query": "weather in Paris"}
    assert fingerprint("web_search", reordered) == fingerprint("web_search", ARGS)


def test_tool_and_arguments_both_count() -> None:
    assert fingerprint("web_search", ARGS) != fingerprint("web_fetch", ARGS)
    assert fingerprint("web_search", ARGS) != fingerprint("web_search", {**ARGS, "limit": 6})


def test_no_arguments_equals_empty_arguments() -> None:
    assert fingerprint("noop") == fingerprint("noop", {})


def test_stable_across_processes() -> None:
    # A different hash seed in the child would reorder sets if they were not sorted.
    code = textwrap.dedent(
        """
        from agentwatch.sdk import fingerprint
        print(fingerprint("web_search", {"query": "weather in Paris", "limit": 5,
              "filters": {"lang": "en", "safe": True}, "tags": {"b", "a", "c"}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    expected = fingerprint("web_search", {**ARGS, "tags": {"a", "b", "c"}})
    assert result.stdout.strip() == expected


def test_memory_addresses_do_not_leak_into_the_fingerprint() -> None:
    assert fingerprint("t", {"obj": Opaque()}) == fingerprint("t", {"obj": Opaque()})
    assert " at 0x" not in canonical_json({"obj": Opaque()})


def test_non_json_values_and_keys_are_handled() -> None:
    args: dict[object, object] = {
        "when": b"bytes",
        3: (1, 2),
        "nan": float("nan"),
        "set": frozenset({2, 1}),
    }
    reordered = dict(reversed(list(args.items())))
    # Non-string keys on purpose: agents pass whatever their tools take.
    assert fingerprint("t", args) == fingerprint("t", reordered)  # type: ignore[arg-type]


def test_cyclic_arguments_do_not_raise() -> None:
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    assert len(fingerprint("t", cyclic)) == 16


def test_size_is_bounded() -> None:
    big = "x" * (MAX_CANONICAL_CHARS * 2)
    # Differences past the bound are not hashed: the cost stays bounded.
    assert fingerprint("t", {"a": big + "1"}) == fingerprint("t", {"a": big + "2"})
    assert fingerprint("t", {"a": "1" + big}) != fingerprint("t", {"a": "2" + big})


class BareAddress:
    def __repr__(self) -> str:
        return f"<BareAddress {id(self):#x}>"


def test_bare_addresses_are_removed_too() -> None:
    assert canonical_json({"o": BareAddress()}) == '{"o":"<BareAddress>"}'


def test_huge_lists_strings_and_bytes_cost_little_and_hash_like_their_prefix() -> None:
    huge = list(range(1_000_000))
    assert fingerprint("t", {"a": huge}) == fingerprint("t", {"a": huge[:5_000]})
    assert len(canonical_json({"s": "y" * 10_000_000})) < 2 * MAX_CANONICAL_CHARS
    assert fingerprint("t", {"b": b"z" * 10_000_000}) == fingerprint("t", {"b": b"z" * 9_000})
    assert fingerprint("t", {"a": [1, 2]}) != fingerprint("t", {"a": [2, 1]})


# Values recorded before the flat-dict fast path changed (issue 4). Fingerprints are compared
# across agents, releases and stored history: a change here is a breaking change.
PINNED = [
    ("web_search", None, "61ea788f1b71cbeb"),
    ("web_search", {}, "61ea788f1b71cbeb"),
    (
        "web_search",
        {"query": "latest results on solar tariffs", "limit": 10, "lang": "en"},
        "f1da891c971fee44",
    ),
    ("t", {"b": True, "a": False, "n": None, "i": -7, "f": 1.5}, "6b509e190010354d"),
    (
        "t",
        {"f": float("nan"), "g": float("inf"), "h": float("-inf"), "z": -0.0, "e": 1e100},
        "a3c5ce7b4a181739",
    ),
    ("t", {"big": 10**30, "flag": 1, "flt": 1.0}, "993a458b4ddec0b9"),
    ("outil", {"q": 'héllo \u2603 "quoted" \\ \n\t\x01', "é": "x"}, "587f5f5a2d4c8577"),
    ("t\ud800", {"s": "\udc00 lone"}, "2a63a266a13601a3"),
    ("t", {"s": "y" * 4096}, "883a8e3ffe174199"),
    ("t", {"s": "y" * 4097}, "883a8e3ffe174199"),
    ("t", {"s": "y" * 5000, "a": 1}, "23a31201d4c63ac1"),
    (
        "t",
        {"nested": {"b": [1, 2, {"c": None}], "a": (3, 4)}, "tags": {"b", "a"}},
        "3bda63f640acfe45",
    ),
    ("t", {1: "int key", "x": b"bytes"}, "f120e9c707f0ef1b"),
]


@pytest.mark.parametrize(("tool", "args", "expected"), PINNED)
def test_fingerprints_are_pinned(tool: str, args: dict[str, object] | None, expected: str) -> None:
    assert fingerprint(tool, args) == expected


def reference_fingerprint(tool: str, args: dict[str, object]) -> str:
    """The definition, spelled with the public json module (JSON-native arguments only)."""
    text = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data = tool.encode("utf-8", "surrogatepass") + b"\x00"
    data += text[:MAX_CANONICAL_CHARS].encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)


@given(
    tool=st.text(min_size=1, max_size=10),
    args=st.dictionaries(st.text(max_size=10), SCALARS | st.text(min_size=4090, max_size=4100)),
)
def test_flat_arguments_match_the_definition(tool: str, args: dict[str, object]) -> None:
    assert fingerprint(tool, args) == reference_fingerprint(tool, args)


@given(
    args=st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            SCALARS,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=8,
        ),
    )
)
def test_nested_arguments_match_the_definition(args: dict[str, object]) -> None:
    assert fingerprint("t", args) == reference_fingerprint("t", args)
