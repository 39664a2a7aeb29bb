from __future__ import annotations

import subprocess
import sys
import textwrap

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
