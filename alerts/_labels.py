"""Label sets, their fingerprints and Alertmanager's label matchers (``=``, ``!=``, ``=~``, ``!~``).

The fingerprint is Prometheus' ``labelSetToFingerprint``: FNV-1a 64 over the label names in
sorted order, each name and value followed by the separator byte 0xff, printed as 16 hex digits.
Regexes are anchored as Alertmanager anchors them: ``^(?:re)$``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

Labels = Mapping[str, str]

_FNV_OFFSET: Final = 14695981039346656037
_FNV_PRIME: Final = 1099511628211
_MASK: Final = (1 << 64) - 1
_SEPARATOR: Final = 0xFF

OPERATORS: Final = ("=~", "!~", "!=", "=")
_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^"]*?)\s*$"""
)


def fingerprint(labels: Labels) -> str:
    """Return the label set's fingerprint as 16 lowercase hex digits (Prometheus' algorithm).

    Pure and thread-safe.

    >>> fingerprint({})
    'cbf29ce484222325'
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def format_labels(labels: Labels) -> str:
    """Return ``{a="1", b="2"}``, sorted by name, as Prometheus prints a label set."""
    inner = ", ".join(f"{name}={_quote(labels[name])}" for name in sorted(labels))
    return "{" + inner + "}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        chars = iter(value[1:-1])
        for c in chars:
            if c == "\\":
                nxt = next(chars, "")
                out.append("\n" if nxt == "n" else nxt)
            else:
                out.append(c)
        return "".join(out)
    return value


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher: ``name op value``; a missing label matches as the empty string.

    Immutable and thread-safe.

    Raises:
        ValueError: An unknown operator or an invalid regex (the message names it).
    """

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"matcher operator must be one of {list(OPERATORS)}, got {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                compiled = re.compile(f"^(?:{self.value})$")
            except re.error as exc:
                raise ValueError(f"matcher {self.name}{self.op}{self.value!r}: {exc}") from exc
            object.__setattr__(self, "_regex", compiled)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse ``name="value"``, ``name=~"re"``, ... (quotes optional), as Alertmanager does."""
        m = _MATCHER_RE.match(text)
        if m is None:
            raise ValueError(f"bad matcher {text!r}: want name, one of {list(OPERATORS)}, value")
        return cls(m["name"], m["op"], _unquote(m["value"]))

    def matches(self, labels: Labels) -> bool:
        """Return True when ``labels`` satisfy this matcher."""
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        found = self._regex.match(value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"

    def to_dict(self) -> dict[str, str]:
        """Return ``{"name", "op", "value"}`` (JSON)."""
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_obj(cls, obj: str | Mapping[str, str]) -> Matcher:
        """Build from a matcher string or a ``{"name", "op", "value"}`` mapping."""
        if isinstance(obj, str):
            return cls.parse(obj)
        return cls(str(obj["name"]), str(obj.get("op", "=")), str(obj["value"]))


def parse_matchers(items: Iterable[str | Mapping[str, str]] | None) -> tuple[Matcher, ...]:
    """Parse a list of matchers (strings or mappings); None gives none."""
    return tuple(Matcher.from_obj(item) for item in (items or ()))


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    """Return True when every matcher matches (True for no matchers)."""
    return all(m.matches(labels) for m in matchers)
