"""Expand a panel's SQL the way Grafana and the ClickHouse plugin do before ClickHouse sees it.

Three passes, in the plugin's order (``Datasource.applyTemplateVariables`` in the browser, then
the Go backend's macro engine from grafana/sqlds):

1. ``$__conditionalAll(condition, $var)``: the condition, or ``1=1`` when ``$var`` is "All" (or
   empty); innermost-last, scanning from the right, arguments split at top-level commas.
2. Template variables (``$var``, ``${var}``) through Grafana's template service with the plugin's
   formatter: a multi-value (and "All", expanded to every option) becomes ``'a','b'``; a single
   value is inserted raw, so SQL quotes it itself (``'${agent}'``).
3. Backend macros, each matched by ``\\$__name\\b(?:\\((.*?)\\))?`` (so arguments cannot contain
   parentheses), arguments split at commas and trimmed:
   ``$__timeFilter(c)`` -> ``c >= toDateTime(from) AND c <= toDateTime(to)``,
   ``$__timeFilter_ms(c)`` (``fromUnixTimestamp64Milli``), ``$__fromTime``/``$__toTime``
   (``toDateTime(unix)``), their ``_ms`` forms, ``$__dateFilter``, ``$__dateTimeFilter``/``$__dt``,
   ``$__timeInterval(c)`` -> ``toStartOfInterval(toDateTime(c), INTERVAL n second)``,
   ``$__timeInterval_ms(c)``, ``$__interval_s`` -> ``n`` (n = max(interval, 1 s), truncated).

Used by the tests to run every panel against a real schema; pure functions, thread-safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

ALL = "$__all"


@dataclass(frozen=True, slots=True)
class Selection:
    """A template variable's current value and, for "All", every option it stands for."""

    value: str | tuple[str, ...]
    options: tuple[str, ...] = field(default=())

    @property
    def is_all(self) -> bool:
        return self.value == ALL or self.value == (ALL,)


class MacroError(ValueError):
    """A macro got the wrong number of arguments (the plugin answers with an error too)."""


def _macro_args(query: str, open_index: int) -> list[str]:
    """The plugin's ``getMacroArgs``: split at commas of bracket depth 1 after ``(``."""
    args: list[str] = []
    depth = 0
    last = 1
    sub = query[open_index:]
    for match in re.finditer(r"[(),]", sub):
        token, end = match.group(), match.end()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if token == "," and depth == 1:
            args.append(sub[last : end - 1])
            last = end
        if depth == 0:
            args.append(sub[last : end - 1])
            return args
    return []


def _js_replacement(replacement: str, matched: str, before: str, after: str) -> str:
    """``String.prototype.replace`` expands ``$$``, ``$&``, ``$```, ``$'`` in a string
    replacement; the plugin passes the raw condition, so it is subject to them."""
    patterns = {"$$": "$", "$&": matched, "$`": before, "$'": after}
    return re.sub(r"\$[$&`']", lambda m: patterns[m.group()], replacement)


def apply_conditional_all(sql: str, variables: Mapping[str, Selection]) -> str:
    macro = "$__conditionalAll("
    index = sql.rfind(macro)
    while index != -1:
        params = _macro_args(sql, index + len(macro) - 1)
        if len(params) != 2:
            return sql
        phrase = params[0]
        name = re.search(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+", params[1].strip())
        if name:
            selection = variables.get(name.group())
            if selection is not None:
                value = selection.value
                text = ",".join(value) if isinstance(value, tuple) else value
                if text in ("", ALL):
                    phrase = "1=1"
        needle = f"{macro}{params[0]},{params[1]})"
        at = sql.find(needle)
        before, after = sql[:at], sql[at + len(needle) :]
        sql = before + _js_replacement(phrase, needle, before, after) + after
        index = sql.rfind(macro)
    return sql


_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def replace_variables(sql: str, variables: Mapping[str, Selection]) -> str:
    """Grafana's template service with the plugin's formatter (arrays -> ``'a','b'``)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        selection = variables.get(name)
        if selection is None:
            return match.group()
        value: str | tuple[str, ...] = selection.options if selection.is_all else selection.value
        if isinstance(value, tuple):
            return "'" + "','".join(value) + "'"
        return value

    return _VARIABLE.sub(substitute, sql)


@dataclass(frozen=True, slots=True)
class _Query:
    time_from: datetime
    time_to: datetime
    interval_s: float


def _date_time(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _date_time64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.strftime('%Y-%m-%d')}')"


def _one(args: Sequence[str], n: int = 1) -> Sequence[str]:
    if len(args) != n:
        raise MacroError(f"expected {n} argument(s), received {len(args)}")
    return args


def _filter(fmt: Callable[[datetime], str]) -> Callable[[_Query, Sequence[str]], str]:
    def expand(q: _Query, args: Sequence[str]) -> str:
        (column,) = _one(args)
        return f"{column} >= {fmt(q.time_from)} AND {column} <= {fmt(q.time_to)}"

    return expand


def _date_time_filter(q: _Query, args: Sequence[str]) -> str:
    date_col, time_col = _one(args, 2)
    dates = f"({date_col} >= {_date(q.time_from)} AND {date_col} <= {_date(q.time_to)})"
    times = f"({time_col} >= {_date_time(q.time_from)} AND {time_col} <= {_date_time(q.time_to)})"
    return f"{dates} AND {times}"


def _time_interval(q: _Query, args: Sequence[str]) -> str:
    (column,) = _one(args)
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {int(max(q.interval_s, 1))} second)"


def _time_interval_ms(q: _Query, args: Sequence[str]) -> str:
    (column,) = _one(args)
    ms = int(max(q.interval_s * 1000, 1))
    return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {ms} millisecond)"


MACROS: Mapping[str, Callable[[_Query, Sequence[str]], str]] = {
    "fromTime": lambda q, _: _date_time(q.time_from),
    "toTime": lambda q, _: _date_time(q.time_to),
    "fromTime_ms": lambda q, _: _date_time64(q.time_from),
    "toTime_ms": lambda q, _: _date_time64(q.time_to),
    "timeFilter": _filter(_date_time),
    "timeFilter_ms": _filter(_date_time64),
    "dateFilter": _filter(_date),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda q, _: str(int(max(q.interval_s, 1))),
}


def apply_macros(sql: str, *, time_from: datetime, time_to: datetime, interval_s: float) -> str:
    """The backend pass (sqlds ``interpolate`` with the plugin's macro table)."""
    query = _Query(time_from, time_to, interval_s)
    for name, macro in MACROS.items():
        pattern = re.compile(r"\$__" + re.escape(name) + r"\b(?:\((.*?)\))?")
        for match in list(pattern.finditer(sql)):
            inner = match.group(1) or ""
            args = [a.strip() for a in inner.split(",")]
            sql = sql.replace(match.group(), macro(query, args))
    return sql


def expand(
    sql: str,
    *,
    time_from: datetime,
    time_to: datetime,
    interval_s: float,
    variables: Mapping[str, Selection] | None = None,
) -> str:
    """All three passes: what ClickHouse receives for a panel's ``rawSql``."""
    variables = variables or {}
    sql = apply_conditional_all(sql, variables)
    sql = replace_variables(sql, variables)
    return apply_macros(sql, time_from=time_from, time_to=time_to, interval_s=interval_s)
