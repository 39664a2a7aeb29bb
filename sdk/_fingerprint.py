"""Stable fingerprints of actions: the key loop detectors compare across processes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

MAX_CANONICAL_CHARS = 4096
"""Canonical argument text beyond this many characters is not hashed (bounds the cost)."""

_MAX_DEPTH = 32
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
)
_SCALARS = frozenset({type(None), bool, int, float})
# Keeping this many leading list items and string characters leaves the first
# MAX_CANONICAL_CHARS characters of the canonical text unchanged (an item takes at least two
# characters with its comma), so the cost is bounded without changing any fingerprint.
_MAX_ITEMS = MAX_CANONICAL_CHARS // 2 + 1
# `` at 0x7f...`` (default reprs) and bare ``0x7f...`` addresses (six hex digits or more).
_ADDRESS = re.compile(r"(?: at)? ?0x[0-9a-fA-F]{6,}")


def fingerprint(tool: str, args: Mapping[str, object] | None = None) -> str:
    """Return a stable 16-hex-digit fingerprint of a tool call.

    The hash is SHA-256 over the tool name and the canonical JSON of ``args`` (sorted keys,
    compact separators). Values JSON cannot express are replaced by their ``repr`` with memory
    addresses (`` at 0x7f...``) removed, and sets are sorted, so the result does not depend on
    argument order, hash seeds or the process. The canonical text is cut at
    :data:`MAX_CANONICAL_CHARS` characters, so two calls differing only beyond that point share
    a fingerprint.

    Thread-safe, pure, never raises for any ``args``.

    Args:
        tool: The tool name (``gen_ai.tool.name``).
        args: The call's arguments; ``None`` means no arguments.

    Returns:
        The first 16 hex digits of the SHA-256 digest.
    """
    if args is None:
        canonical = "{}"
    elif type(args) is dict and all(_is_plain(key, value) for key, value in args.items()):
        # The common case, a flat dict of short scalars, is already canonical: skip the walk.
        canonical = _ENCODER.encode(args)
    else:
        canonical = canonical_json(args)
    digest = hashlib.sha256()
    digest.update(tool.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(canonical[:MAX_CANONICAL_CHARS].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def canonical_json(value: object) -> str:
    """Return the canonical JSON text of ``value`` (see :func:`fingerprint`)."""
    return _ENCODER.encode(_normalize(value, 0))


def _is_plain(key: object, value: object) -> bool:
    if type(key) is not str:
        return False
    if type(value) is str:
        return len(value) <= MAX_CANONICAL_CHARS
    return type(value) in _SCALARS


def _normalize(value: object, depth: int) -> object:
    """Turn ``value`` into plain JSON data with string keys, deterministically."""
    if isinstance(value, str):
        return value[: MAX_CANONICAL_CHARS + 1]
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        # Also ends self-referencing structures, which json.dumps would reject.
        return "<...>"
    if isinstance(value, Mapping):
        return {_key(k): _normalize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(item, depth + 1) for item in value[:_MAX_ITEMS]]
    if isinstance(value, set | frozenset):
        items = [_normalize(item, depth + 1) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return _safe_repr(value)


def _key(key: object) -> str:
    return key if isinstance(key, str) else _safe_repr(key)


def _safe_repr(value: object) -> str:
    if isinstance(value, bytes | bytearray) and len(value) > MAX_CANONICAL_CHARS:
        value = bytes(value[:MAX_CANONICAL_CHARS])  # its repr is at least as long
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__qualname__}>"
    return _ADDRESS.sub("", text[: MAX_CANONICAL_CHARS * 4])
