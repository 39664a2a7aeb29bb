"""The routing tree and inhibition rules, read from a config dict shaped like Alertmanager's YAML.

Routing follows Alertmanager's ``Route.Match``: a route whose matchers match descends into its
children in order; each matching child contributes its own matches and, unless its ``continue`` is
true, stops the search; when no child matches, the route itself is the match. Children inherit
``receiver``, ``group_by`` and the three timers from their parent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ._labels import Labels, Matcher, format_labels, matches_all, parse_matchers

DEFAULT_GROUP_WAIT_S: Final = 30.0
DEFAULT_GROUP_INTERVAL_S: Final = 300.0
DEFAULT_REPEAT_INTERVAL_S: Final = 4 * 3600.0
DEFAULT_RESOLVE_TIMEOUT_S: Final = 300.0
GROUP_BY_ALL: Final = "..."

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S: Final = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


def parse_duration(value: str | float | int, name: str = "duration") -> float:
    """Parse a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``4h``) or a number of seconds.

    Raises:
        ValueError: Malformed or negative; the message names ``name``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        return float(value)
    text = value.strip()
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m[1]) * _UNIT_S[m[2]]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{name} must be a duration like 30s, 5m or 4h, got {value!r}")
    return total


@dataclass(frozen=True, slots=True)
class Route:
    """One node of the routing tree. Immutable and thread-safe.

    Attributes:
        receiver: The receiver's name.
        matchers: All must match for the route to match.
        group_by: Label names to group by; ``("...",)`` groups by every label.
        group_wait_s: Wait before a new group's first notification.
        group_interval_s: Wait between notifications of a group that changed.
        repeat_interval_s: Wait before repeating an unchanged notification.
        continue_: Keep looking at later siblings after this one matched.
        routes: Children.
        key: Alertmanager's route key (``{}/{severity="critical"}``), the prefix of group keys.
    """

    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ()
    group_wait_s: float = DEFAULT_GROUP_WAIT_S
    group_interval_s: float = DEFAULT_GROUP_INTERVAL_S
    repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    key: str = "{}"

    @property
    def group_by_all(self) -> bool:
        """True when grouping by every label (``group_by: ['...']``)."""
        return GROUP_BY_ALL in self.group_by

    def match(self, labels: Labels) -> list[Route]:
        """Return the routes ``labels`` go to (empty when this route does not match)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Labels) -> dict[str, str]:
        """Return the labels a group of this route is identified by."""
        if self.group_by_all:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if labels.get(name)}

    def group_key(self, group_labels: Labels) -> str:
        """Return Alertmanager's group key: ``<route key>:<group labels>``."""
        return f"{self.key}:{format_labels(group_labels)}"


def _matchers_key(matchers: Sequence[Matcher]) -> str:
    return "{" + ",".join(str(m) for m in matchers) + "}"


def _legacy_matchers(node: Mapping[str, Any]) -> list[Matcher]:
    # Alertmanager's deprecated `match` / `match_re` maps.
    found = [Matcher(str(k), "=", str(v)) for k, v in (node.get("match") or {}).items()]
    found += [Matcher(str(k), "=~", str(v)) for k, v in (node.get("match_re") or {}).items()]
    return found


def build_route(node: Mapping[str, Any], parent: Route | None = None, path: str = "route") -> Route:
    """Build a routing (sub)tree from a ``route:`` mapping, inheriting from ``parent``.

    Raises:
        ValueError: A missing root receiver, a bad matcher or duration; the message names the path.
    """
    receiver = node.get("receiver", parent.receiver if parent else None)
    if not receiver:
        raise ValueError(f"{path}.receiver is required on the root route")
    try:
        matchers = (*parse_matchers(node.get("matchers")), *_legacy_matchers(node))
    except ValueError as exc:
        raise ValueError(f"{path}.matchers: {exc}") from exc
    if parent is None and matchers:
        raise ValueError(f"{path}: the root route must not have matchers")
    group_by = tuple(str(n) for n in node.get("group_by", parent.group_by if parent else ()))
    if GROUP_BY_ALL in group_by and len(group_by) > 1:
        raise ValueError(f"{path}.group_by: '...' must be alone, got {list(group_by)}")

    def timer(name: str, default: float) -> float:
        if name in node:
            return parse_duration(node[name], f"{path}.{name}")
        return float(getattr(parent, f"{name}_s")) if parent else default

    key = _matchers_key(matchers) if parent is None else f"{parent.key}/{_matchers_key(matchers)}"
    route = Route(
        receiver=str(receiver),
        matchers=matchers,
        group_by=group_by,
        group_wait_s=timer("group_wait", DEFAULT_GROUP_WAIT_S),
        group_interval_s=timer("group_interval", DEFAULT_GROUP_INTERVAL_S),
        repeat_interval_s=timer("repeat_interval", DEFAULT_REPEAT_INTERVAL_S),
        continue_=bool(node.get("continue", False)),
        key=key,
    )
    if route.group_interval_s <= 0:
        raise ValueError(f"{path}.group_interval must be > 0")
    children = tuple(
        build_route(child, route, f"{path}.routes[{i}]")
        for i, child in enumerate(node.get("routes") or ())
    )
    return replace(route, routes=children)


def receivers_of(route: Route) -> set[str]:
    """Every receiver name the tree refers to."""
    names = {route.receiver}
    for child in route.routes:
        names |= receivers_of(child)
    return names


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """Mutes target alerts while a firing source alert has equal values for ``equal``.

    As in Alertmanager: a missing label equals another missing one, a source never inhibits
    itself, and an alert matching both sides is only inhibited by a source that does not also
    match the target side.
    """

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, node: Mapping[str, Any], path: str = "inhibit_rules[0]") -> InhibitRule:
        """Build from an ``inhibit_rules`` entry.

        Raises:
            ValueError: A bad matcher; the message names the path.
        """
        try:
            source = (*parse_matchers(node.get("source_matchers")), *_legacy_source(node, "source"))
            target = (*parse_matchers(node.get("target_matchers")), *_legacy_source(node, "target"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return cls(source, target, tuple(str(n) for n in node.get("equal") or ()))

    def inhibits(self, target: Labels, sources: Sequence[Labels]) -> bool:
        """Return True when ``target`` is muted by one of the firing ``sources``."""
        if not matches_all(self.target_matchers, target):
            return False
        target_is_source = matches_all(self.source_matchers, target)
        for source in sources:
            if source == target or not matches_all(self.source_matchers, source):
                continue
            if any(source.get(n, "") != target.get(n, "") for n in self.equal):
                continue
            if target_is_source and matches_all(self.target_matchers, source):
                continue
            return True
        return False


def _legacy_source(node: Mapping[str, Any], side: str) -> list[Matcher]:
    found = [Matcher(str(k), "=", str(v)) for k, v in (node.get(f"{side}_match") or {}).items()]
    found += [
        Matcher(str(k), "=~", str(v)) for k, v in (node.get(f"{side}_match_re") or {}).items()
    ]
    return found
