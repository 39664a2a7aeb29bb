"""AlertManager: Alertmanager's dispatcher, inhibitor, silencer and dedup stage on virtual time.

Nothing here runs by itself: :meth:`AlertManager.tick` does, at a time the caller chooses, every
group flush that fell due up to then, in time order, so tests drive it with virtual time and a thin
thread (:class:`AlertManagerRunner`) drives it with the wall clock.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._alert import Alert, alert_from_anomaly
from ._anomaly import AnomalyLike
from ._labels import Labels, fingerprint
from ._nflog import NotificationLog, needs_update
from ._notification import GroupNotification, Integration, OutboundMessage, stable_id
from ._route import (
    DEFAULT_RESOLVE_TIMEOUT_S,
    InhibitRule,
    Route,
    build_route,
    parse_duration,
    receivers_of,
)
from ._silence import Silences

logger = logging.getLogger(__name__)

NS = 1_000_000_000
Sink = Callable[[OutboundMessage], object]
"""Takes each rendered message: ``Outbox.enqueue`` (durable) or a test's list.append."""


@dataclass(slots=True)
class _Group:
    route: Route
    labels: dict[str, str]
    key: str
    alerts: dict[str, Alert] = field(default_factory=dict)
    next_flush_ns: int = 0
    has_flushed: bool = False


class AlertManager:
    """Groups, routes, mutes, deduplicates and notifies alerts, as Alertmanager does.

    Thread-safe (one lock); :meth:`tick` blocks on the notification log's fsync and on ``sink``.

    Args:
        config: The ``alerting`` mapping: ``route`` (required), ``inhibit_rules``,
            ``resolve_timeout`` (default 5m; also read from ``global.resolve_timeout``),
            ``external_url``, ``env``.
        receivers: Receiver name -> one integration or a sequence of them.
        sink: Where rendered messages go; pass ``outbox.enqueue``.
        state_dir: Where ``nflog.json`` and ``silences.json`` live; None keeps them in memory.
        clock: Wall clock in ns (for pushes without times, silences and the API).

    Raises:
        ValueError: A bad config (the message names the key) or a route naming an unknown receiver.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        receivers: Mapping[str, Integration | Sequence[Integration]],
        *,
        sink: Sink,
        state_dir: Path | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if "route" not in config:
            raise ValueError("route is required")
        self.route = build_route(config["route"])
        self.inhibit_rules = tuple(
            InhibitRule.from_dict(node, f"inhibit_rules[{i}]")
            for i, node in enumerate(config.get("inhibit_rules") or ())
        )
        timeout = config.get("resolve_timeout", (config.get("global") or {}).get("resolve_timeout"))
        self.resolve_timeout_s = (
            DEFAULT_RESOLVE_TIMEOUT_S
            if timeout is None
            else parse_duration(timeout, "resolve_timeout")
        )
        self.external_url = str(config.get("external_url", ""))
        self.env = str(config.get("env", ""))
        self._receivers: dict[str, tuple[Integration, ...]] = {
            name: (tuple(value) if isinstance(value, Sequence) else (value,))
            for name, value in receivers.items()
        }
        missing = receivers_of(self.route) - set(self._receivers)
        if missing:
            raise ValueError(f"route refers to undefined receivers {sorted(missing)}")
        self._sink = sink
        self._clock = clock
        self._lock = threading.RLock()
        self._alerts: dict[str, Alert] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self.nflog = NotificationLog(state_dir / "nflog.json" if state_dir else None)
        self.silences = Silences(state_dir / "silences.json" if state_dir else None, clock=clock)
        self.notifications_total = 0

    # --- input -------------------------------------------------------------------------------

    def push(self, item: Alert | AnomalyLike, *, now_ns: int | None = None) -> Alert:
        """Add or refresh an alert (an anomaly becomes one via :func:`alert_from_anomaly`).

        An alert without an end time gets ``now + resolve_timeout`` (Alertmanager's rule), so it
        resolves unless pushed again. Non-blocking.
        """
        now = self._clock() if now_ns is None else now_ns
        alert = item if isinstance(item, Alert) else alert_from_anomaly(item, env=self.env)
        if not alert.starts_at_ns:
            alert = replace(alert, starts_at_ns=now)
        alert = replace(alert, updated_at_ns=now)
        if not alert.ends_at_ns:
            alert = replace(alert, ends_at_ns=now + int(self.resolve_timeout_s * NS), timeout=True)
        with self._lock:
            fp = alert.fingerprint
            old = self._alerts.get(fp)
            if old is not None:
                alert = old.merge(alert)
            self._alerts[fp] = alert
            for route in self.route.match(alert.labels):
                self._insert(route, alert, now)
        return alert

    def resolve(self, labels_or_fingerprint: Labels | str, *, now_ns: int | None = None) -> bool:
        """Resolve an alert now (its end time becomes ``now``). Returns False when unknown."""
        now = self._clock() if now_ns is None else now_ns
        fp = (
            labels_or_fingerprint
            if isinstance(labels_or_fingerprint, str)
            else fingerprint(labels_or_fingerprint)
        )
        with self._lock:
            alert = self._alerts.get(fp)
            if alert is None or alert.resolved(now):
                return False
            self.push(replace(alert, ends_at_ns=now, timeout=False), now_ns=now)
            return True

    def _insert(self, route: Route, alert: Alert, now: int) -> None:
        labels = route.group_labels(alert.labels)
        key = route.group_key(labels)
        group = self._groups.get((route.key, key))
        if group is None:
            group = _Group(route, labels, key, next_flush_ns=now + int(route.group_wait_s * NS))
            self._groups[(route.key, key)] = group
        group.alerts[alert.fingerprint] = alert
        # Alertmanager: an alert older than group_wait flushes a group that never flushed at once.
        if not group.has_flushed and alert.starts_at_ns + int(route.group_wait_s * NS) <= now:
            group.next_flush_ns = min(group.next_flush_ns, now)

    # --- time --------------------------------------------------------------------------------

    def next_due_ns(self) -> int | None:
        """When the next group flush is due, or None when there are no groups."""
        with self._lock:
            return min((g.next_flush_ns for g in self._groups.values()), default=None)

    def tick(self, now_ns: int | None = None) -> list[GroupNotification]:
        """Run every flush due at or before ``now_ns``, in time order, each at its own time.

        Returns:
            The notifications made (one per receiver and group that needed an update).
        """
        now = self._clock() if now_ns is None else now_ns
        sent: list[GroupNotification] = []
        with self._lock:
            heap = [(g.next_flush_ns, g.key, k) for k, g in self._groups.items()]
            heapq.heapify(heap)
            while heap and heap[0][0] <= now:
                at, _, gk = heapq.heappop(heap)
                group = self._groups.get(gk)
                if group is None or group.next_flush_ns != at:
                    continue
                sent.extend(self._flush(group, at))
                group.has_flushed = True
                if group.alerts:
                    group.next_flush_ns = at + int(group.route.group_interval_s * NS)
                    heapq.heappush(heap, (group.next_flush_ns, group.key, gk))
                else:
                    del self._groups[gk]
            self._gc(now)
        return sent

    def _muted(self, alert: Alert, firing_sources: list[Labels], at: int) -> bool:
        if self.silences.muted_by(alert.labels, at):
            return True
        return any(rule.inhibits(alert.labels, firing_sources) for rule in self.inhibit_rules)

    def _flush(self, group: _Group, at: int) -> list[GroupNotification]:
        snapshot = dict(group.alerts)
        sources = [a.labels for a in self._alerts.values() if not a.resolved(at)]
        ordered = sorted(snapshot.values(), key=_label_order)
        visible = [a for a in ordered if not self._muted(a, sources, at)]
        firing = {a.fingerprint for a in visible if not a.resolved(at)}
        resolved = {a.fingerprint for a in visible if a.resolved(at)}
        receiver = group.route.receiver
        integrations = self._receivers[receiver]
        entry = self.nflog.get(receiver, group.key)
        made: list[GroupNotification] = []
        # One nflog entry per receiver; send_resolved is per integration (any of them counts).
        send_resolved = any(i.send_resolved for i in integrations)
        reason = needs_update(
            entry,
            firing,
            resolved,
            send_resolved=send_resolved,
            repeat_interval_ns=int(group.route.repeat_interval_s * NS),
            now_ns=at,
        )
        if reason is not None:
            n = GroupNotification(
                receiver, group.key, group.labels, tuple(visible), reason, at, self.external_url
            )
            previous = str(entry.timestamp_ns) if entry else "-"
            for index, integration in enumerate(integrations):
                alerts = n.alerts if integration.send_resolved else tuple(n.firing())
                if not alerts:
                    continue  # only resolved alerts and no send_resolved: logged, not sent
                part = replace(n, alerts=alerts)
                destination = f"{receiver}/{index}"
                msg_id = stable_id(
                    destination, group.key, previous, *sorted(firing), "|", *sorted(resolved)
                )
                self._sink(integration.render(part, webhook_id=msg_id, destination=destination))
                self.notifications_total += 1
                made.append(part)
            self.nflog.log(receiver, group.key, firing, resolved, at)
        # Alertmanager deletes the resolved alerts it flushed, unless pushed again meanwhile.
        for fp, alert in snapshot.items():
            if alert.resolved(at) and group.alerts.get(fp) is alert:
                del group.alerts[fp]
        return made

    def _gc(self, now: int) -> None:
        held = {fp for g in self._groups.values() for fp in g.alerts}
        for fp in [fp for fp, a in self._alerts.items() if a.resolved(now) and fp not in held]:
            del self._alerts[fp]

    # --- reads -------------------------------------------------------------------------------

    def alerts(self, *, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Every known alert as API JSON, with ``silenced_by`` and ``inhibited`` at ``now_ns``."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            known = sorted(self._alerts.values(), key=lambda a: (a.starts_at_ns, a.fingerprint))
            sources = [a.labels for a in known if not a.resolved(now)]
            out = []
            for alert in known:
                row = alert.to_dict(now)
                row["silenced_by"] = self.silences.muted_by(alert.labels, now)
                row["inhibited"] = any(
                    r.inhibits(alert.labels, sources) for r in self.inhibit_rules
                )
                row["receivers"] = sorted({r.receiver for r in self.route.match(alert.labels)})
                out.append(row)
            return out

    def groups(self) -> list[dict[str, Any]]:
        """Every aggregation group: key, receiver, labels, alert fingerprints, next flush."""
        with self._lock:
            return [
                {
                    "group_key": g.key,
                    "receiver": g.route.receiver,
                    "labels": dict(g.labels),
                    "alerts": sorted(g.alerts),
                    "next_flush_ns": g.next_flush_ns,
                }
                for g in sorted(self._groups.values(), key=lambda g: g.key)
            ]


def _label_order(alert: Alert) -> list[tuple[str, str]]:
    # Alertmanager sorts a group's alerts by label set (names, then values, in name order).
    return sorted(alert.labels.items())


class AlertManagerRunner:
    """A daemon thread calling :meth:`AlertManager.tick` when due (at least every ``poll_s``).

    ``start`` and ``shutdown`` are idempotent; ``shutdown`` blocks up to ``timeout_s``.
    """

    def __init__(self, manager: AlertManager, *, poll_s: float = 1.0) -> None:
        self.manager = manager
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="agentwatch-alertmanager", daemon=True
        )

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.manager.tick()
            except Exception:
                logger.exception("alertmanager tick failed")
            due = self.manager.next_due_ns()
            wait = self.poll_s if due is None else (due - time.time_ns()) / NS
            self._stop.wait(min(self.poll_s, max(0.01, wait)))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
