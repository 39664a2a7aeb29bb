"""Stable fingerprints of actions: the key loop detectors compare across processes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

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


def _flat_encoder() -> Callable[[dict[str, object]], str]:
    """Return ``_ENCODER.encode`` for flat dicts of scalars, without its per-call set-up.

    ``JSONEncoder.encode`` builds a new C encoder (and a closure and a dict) on every call,
    about half of its cost on a small dict. This builds the same C encoder once, with the
    arguments ``iterencode`` gives it, minus the circular-reference markers, which a flat
    dict of scalars cannot need. ``c_make_encoder`` is the json module's own accelerator
    rather than public API, so it is used only when present and when it encodes a probe
    exactly as ``_ENCODER`` does; otherwise ``_ENCODER.encode`` serves.
    """
    make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:
        return _ENCODER.encode
    try:
        c_encode = make_encoder(
            None,  # no circular-reference markers
            _ENCODER.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            ":",
            ",",
            True,  # sort_keys
            False,  # skipkeys
            True,  # allow_nan
        )

        def encode(args: dict[str, object]) -> str:
            return "".join(c_encode(args, 0))

        probe: dict[str, object] = {
            "s": 'é\u2603"\\\n\x01\ud800',
            "b": True,
            "n": None,
            "i": -(10**30),
            "f": 0.1,
            "nan": math.nan,
            "inf": -math.inf,
            "z": -0.0,
        }
        if encode(probe) == _ENCODER.encode(probe) and encode({}) == "{}":
            return encode
    except Exception:  # another interpreter's accelerator: keep the public path
        pass
    return _ENCODER.encode


_encode_flat = _flat_encoder()


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
    elif type(args) is dict:
        # The common case, a flat dict of short scalars, is already canonical: skip the walk.
        # An inline loop, not all() over a generator: this runs on every action.
        for key, value in args.items():
            if type(key) is str and (
                (type(value) is str and len(value) <= MAX_CANONICAL_CHARS)
                or type(value) in _SCALARS
            ):
                continue
            canonical = canonical_json(args)
            break
        else:
            canonical = _encode_flat(args)
    else:
        canonical = canonical_json(args)
    # One buffer, one hash call: UTF-8 encodes code point by code point, so this is the
    # tool's bytes, a zero byte, then the canonical text's bytes.
    text = f"{tool}\x00{canonical[:MAX_CANONICAL_CHARS]}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def canonical_json(value: object) -> str:
    """Return the canonical JSON text of ``value`` (see :func:`fingerprint`)."""
    return _ENCODER.encode(_normalize(value, 0))


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
