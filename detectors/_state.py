"""Pickled state of the detectors' classes: the same whether they run interpreted or compiled.

Interpreted, a class with ``__slots__`` pickles as ``(None, {slot: value})``; compiled by mypyc
(setup.py), it has no ``__slots__`` at run time, lists its attributes in ``__mypyc_attrs__``
and pickles as ``{attribute: value}``. The detectors pickle through :func:`state_of` and
restore through :func:`restore`, which read both: a snapshot written by either build restores
in the other, and those written before the build was compiled still restore.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Pickled", "fields", "restore", "slots_of", "state_of"]

_CACHE: dict[type, tuple[str, ...]] = {}


def fields(cls: type) -> tuple[str, ...]:
    """The instance attributes ``cls`` and its bases declare, by name."""
    names = _CACHE.get(cls)
    if names is None:
        found: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("__mypyc_attrs__") or klass.__dict__.get("__slots__", ())
            found.update((name, None) for name in own if not name.startswith("__"))
        names = _CACHE[cls] = tuple(found)
    return names


def state_of(obj: object, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``obj``'s attributes that are set (slots, a compiled class's attributes, its ``__dict__``),
    by name, but those in ``skip``."""
    state: dict[str, Any] = {k: v for k, v in getattr(obj, "__dict__", {}).items() if k not in skip}
    for name in fields(type(obj)):
        if name not in skip and hasattr(obj, name):
            state[name] = getattr(obj, name)
    return state


def slots_of(state: Any) -> dict[str, Any]:
    """The attributes in a pickled state: ``{name: value}``, as :func:`state_of` and a compiled
    class write it, or ``(dict or None, {slot: value})``, as an interpreted slotted class does."""
    if isinstance(state, tuple):
        own, slots = state
        return {**(own or {}), **(slots or {})}
    if not isinstance(state, dict):
        raise TypeError(f"pickled state must be a dict or a (dict, dict) tuple, got {state!r}")
    return state


def restore(obj: object, state: dict[str, Any]) -> None:
    """Sets ``obj``'s attributes from ``state`` (one that :func:`slots_of` returned)."""
    for name, value in state.items():
        setattr(obj, name, value)


class Pickled:
    """Base of the detectors' slotted classes: pickles them through :func:`state_of` and
    :func:`restore`. A class that migrates older pickles overrides ``__setstate__``."""

    __slots__ = ()

    def __getstate__(self) -> dict[str, Any]:
        return state_of(self)

    def __setstate__(self, state: Any) -> None:
        restore(self, slots_of(state))
