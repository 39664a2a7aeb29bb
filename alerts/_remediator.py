"""Remediator: turns anomalies into breaker, rollback and failover commands, and notifications.

Breaker state lives in :class:`AgentBreakers` (persisted when given a path). With an
:class:`Outbox`, every command is stored durably under a webhook-id derived from the decision (the
agent's transition number, the anomaly), so a replay after a crash is never sent twice; without
one, commands go through the :class:`Dispatcher`'s control lane as before. How commands and
notifications are sent and their outcomes reported is ``_remediation_delivery``'s part.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agentwatch.sdk.semconv import (
    BREAKER_FORCED_OPEN,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    CONTROL_TYPE_BREAKER,
    CONTROL_TYPE_FAILOVER,
    CONTROL_TYPE_ROLLBACK,
)

from ._anomaly import AnomalyLike
from ._breaker import AgentBreakers, BreakerStatus, Transition
from ._control import ControlCommand, ControlSender
from ._delivery import Delivery
from ._dispatcher import Dispatcher
from ._outbox import Outbox
from ._policy import RemediationPolicy
from ._recovery import (
    CheckpointLookup,
    Incident,
    Incidents,
    checkpoint_before,
    latest_checkpoint,
)
from ._remediation_delivery import NO_CONTROL_URL, RemediationDelivery, control_webhook_id
from ._slack import Notification, Receiver

__all__ = ["NO_CONTROL_URL", "Remediator"]

logger = logging.getLogger(__name__)


class Remediator:
    """Decides what each anomaly calls for and sends it, breaker first, never waiting on people.

    For every anomaly: the policy may open the agent's breaker (CLOSED or HALF_OPEN -> OPEN; an
    open or forced-open breaker is not sent again) and may roll the agent back to the newest
    checkpoint recorded before the anomaly's onset; a notification goes to ``slack`` on the notify
    lane. The service's breaker state changes when the command is decided, not when it is
    delivered, since agents also pull their state from the API. Every breaker transition goes to
    ``breakers.on_transition``; in METRICS_ONLY (shadow) mode transitions are reported, not sent.

    Thread-safe; no method blocks on the network (with an outbox, commands cost one fsync'd
    insert) and none raises on delivery problems. ``on_delivery`` gets every outcome, on a worker
    thread (or the caller's when nothing could be queued); it must be thread-safe and quick.

    Args:
        policy: Which commands an anomaly calls for.
        control_client: Sends control commands without an outbox (:class:`ControlWebhookClient`).
        slack: Where per-anomaly notifications go; None for none.
        dispatcher: Runs deliveries; :meth:`shutdown` shuts it down.
        on_delivery: Observer of every delivery outcome (metrics, the notification log).
        clock: Wall clock in ns, for the commands' ``issued_at`` and the breakers' timing.
        breakers: Per-agent breakers (give one with a path to persist them, ``open_wait_s``,
            ``probe_actions``, ``shadow``, ``on_transition``); the remediator sets its
            ``before_commit``. By default an in-memory one.
        outbox: When given, control commands are stored there and sent by it (durable).
        checkpoints: Where rollback and failover find checkpoints; None disables both.
        on_incident: Called when an incident opens, learns its checkpoint or standby, and
            closes (healthy again: RTO known).
    """

    def __init__(
        self,
        policy: RemediationPolicy,
        control_client: ControlSender,
        *,
        slack: Receiver | None = None,
        dispatcher: Dispatcher,
        on_delivery: Callable[[Delivery], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
        breakers: AgentBreakers | None = None,
        outbox: Outbox | None = None,
        checkpoints: CheckpointLookup | None = None,
        on_incident: Callable[[Incident], None] | None = None,
    ) -> None:
        self.policy = policy
        self._delivery = RemediationDelivery(
            control_client,
            slack=slack,
            dispatcher=dispatcher,
            outbox=outbox,
            on_delivery=on_delivery,
            clock=clock,
        )
        self._clock = clock
        self._checkpoints = checkpoints
        self._on_incident = on_incident
        self.breakers = breakers if breakers is not None else AgentBreakers(clock=clock)
        self.breakers.before_commit = self._send_transition
        self._rollbacks: dict[str, dict[str, str]] = {}
        self.incidents = Incidents()
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        self._standbys: dict[str, tuple[str, str]] = {}
        self._rolled_back: set[str] = set()

    @property
    def dropped_total(self) -> int:
        """Deliveries not attempted because a dispatcher queue was full or shut down."""
        return self._delivery.dropped_total

    def breaker_state(self, agent: str) -> str:
        """Return the state ``agent`` should apply (``"closed"`` when never opened)."""
        return self.breakers.state(agent)

    def breaker_statuses(self) -> list[BreakerStatus]:
        """Every agent's breaker, for the API's breaker list."""
        return self.breakers.statuses()

    def set_control_url(self, agent: str, url: str | None) -> None:
        """Remember the agent's control URL (``handle`` does it too) for later commands."""
        with self._lock:
            if url:
                self._urls[agent] = url

    def _url(self, agent: str) -> str | None:
        with self._lock:
            return self._urls.get(agent)

    def handle(self, anomaly: AnomalyLike, control_url: str | None) -> list[ControlCommand]:
        """Decide and dispatch what ``anomaly`` calls for. Non-blocking.

        Args:
            anomaly: The finding.
            control_url: The agent's control webhook URL, None while it has not announced one.

        Returns:
            The commands newly issued (a breaker already open for the agent is left out).
        """
        self.set_control_url(anomaly.agent, control_url)
        now = self._clock()
        issued: list[ControlCommand] = []
        for command in self.policy.decide(anomaly, now_ns=now):
            if command.type == CONTROL_TYPE_BREAKER:
                sent = self._handle_breaker(command, control_url, now)
            else:
                sent = self._handle_rollback(anomaly, command)
            if sent is not None:
                issued.append(sent)
        if self._delivery.slack is not None:
            self._delivery.notify(Notification.from_anomaly(anomaly))
        return issued

    def _handle_breaker(
        self, command: ControlCommand, control_url: str | None, now: int
    ) -> ControlCommand | None:
        agent = command.agent
        t = self.breakers.on_anomaly(agent, command.anomaly_id, command.reason, now)
        if t is not None:
            self._open_incident(agent, "breaker", command.anomaly_id, now)
            return None if t.shadow else self._transition_command(t)
        state = self.breakers.state(agent)
        replay = control_url is not None and self._delivery.unpushed(agent)
        if replay and state in (BREAKER_OPEN, BREAKER_FORCED_OPEN):
            # Decided while the agent had no URL: push it now that it has one.
            status = self.breakers.status(agent)
            replayed = dataclasses.replace(command, state=state)
            self._send(replayed, f"breaker:{state}:v{status.version}")
            return replayed
        return None

    def _handle_rollback(
        self, anomaly: AnomalyLike, command: ControlCommand
    ) -> ControlCommand | None:
        if self._checkpoints is None:
            return None
        with self._lock:
            if anomaly.id in self._rolled_back:
                return None
            self._rolled_back.add(anomaly.id)
        checkpoint = checkpoint_before(
            self._checkpoints.checkpoints(anomaly.agent), anomaly.onset_ns
        )
        if checkpoint is None:
            logger.warning(
                "no checkpoint of agent %s before anomaly %s's onset; no rollback",
                anomaly.agent,
                anomaly.id,
            )
            return None
        rollback = dataclasses.replace(command, checkpoint_id=checkpoint.checkpoint_id)
        step = anomaly.evidence.get("step")
        incident = self._open_incident(
            anomaly.agent, CONTROL_TYPE_ROLLBACK, anomaly.id, self._clock()
        )
        self._update_incident(
            incident.agent,
            checkpoint_id=checkpoint.checkpoint_id,
            checkpoint_step=checkpoint.step,
            failed_step=int(step)
            if isinstance(step, int)
            else _newest_step(self._checkpoints, anomaly.agent),
        )
        decision = f"rollback:{anomaly.id}"
        self._send(rollback, decision)
        if self._delivery.outbox is not None:  # ids are stable only through the outbox
            with self._lock:
                self._rollbacks[anomaly.agent] = {
                    "checkpoint_id": checkpoint.checkpoint_id,
                    "webhook_id": control_webhook_id(anomaly.agent, decision),
                    "reason": rollback.reason,
                    "anomaly_id": anomaly.id,
                }
        return rollback

    def pending_rollback(self, agent: str) -> dict[str, str] | None:
        """The agent's latest rollback, with the webhook-id its webhook carries, for the pull
        fallback (the SDK runs each webhook-id once, whichever path brings it); None if none."""
        with self._lock:
            rollback = self._rollbacks.get(agent)
            return dict(rollback) if rollback else None

    # --- operator and agent signals ----------------------------------------------------------

    def tick(self, now_ns: int | None = None) -> list[Transition]:
        """Move breakers whose open wait is over to HALF_OPEN (and tell their agents)."""
        return self.breakers.tick(now_ns)

    def record_normal_action(self, agent: str, now_ns: int | None = None) -> Transition | None:
        """A normal action of ``agent``: counts toward closing a HALF_OPEN breaker; a standby's
        or a rolled-back agent's first normal action ends its incident (RTO)."""
        now = self._clock() if now_ns is None else now_ns
        t = self.breakers.record_normal_action(agent, now)
        state = self.breakers.state(agent)
        if state not in (BREAKER_OPEN, BREAKER_FORCED_OPEN, BREAKER_HALF_OPEN):
            self._close_incident(agent, now)
        for failed, (standby, _) in list(self._standbys.items()):
            if standby == agent:
                self._close_incident(failed, now)
        return t

    def force_open(self, agent: str, reason: str) -> Transition | None:
        """The kill switch: FORCED_OPEN until :meth:`close`; sent even in shadow mode."""
        return self.breakers.force_open(agent, reason)

    def close(self, agent: str, reason: str = "closed by operator") -> Transition | None:
        """Close the agent's breaker by hand."""
        t = self.breakers.close(agent, reason)
        if t is not None:
            self._close_incident(agent, t.at_ns)
        return t

    def register_standby(self, agent: str, standby: str, control_url: str) -> None:
        """Name the standby that takes over ``agent``'s work when its heartbeat is lost."""
        with self._lock:
            self._standbys[agent] = (standby, control_url)

    def heartbeat_lost(self, agent: str, reason: str = "heartbeat lost") -> ControlCommand | None:
        """Hand ``agent``'s last checkpoint to its standby, once per incident.

        Returns:
            The failover sent, or None (no standby, no checkpoints, or already failed over).
        """
        with self._lock:
            standby = self._standbys.get(agent)
        if standby is None or self._checkpoints is None:
            logger.warning(
                "heartbeat of agent %s lost; no standby or checkpoints to fail over", agent
            )
            return None
        checkpoint = latest_checkpoint(self._checkpoints.checkpoints(agent))
        if checkpoint is None:
            logger.warning("heartbeat of agent %s lost; it has no checkpoint", agent)
            return None
        now = self._clock()
        open_ = self.incidents.get_open(agent)
        if open_ is not None and open_.standby:
            return None
        incident = self._open_incident(agent, CONTROL_TYPE_FAILOVER, "", now)
        self._update_incident(
            agent,
            standby=standby[0],
            checkpoint_id=checkpoint.checkpoint_id,
            checkpoint_step=checkpoint.step,
            failed_step=checkpoint.step,
        )
        command = ControlCommand(
            type=CONTROL_TYPE_FAILOVER,
            agent=standby[0],
            failed_agent=agent,
            checkpoint_id=checkpoint.checkpoint_id,
            reason=reason,
            issued_ns=now,
        )
        self._send(command, f"failover:{agent}:{incident.id}", url=standby[1])
        return command

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish for up to ``timeout_s``, then stop retries and the workers.

        Blocks up to about ``timeout_s``; the clients' shutdown (when they have one) interrupts
        deliveries still retrying after that. Idempotent. An outbox is left to its owner.
        """
        self._delivery.shutdown(timeout_s)

    # --- internals ---------------------------------------------------------------------------

    def _open_incident(self, agent: str, kind: str, anomaly_id: str, now: int) -> Incident:
        fresh = Incident(f"{agent}:{now}", agent, kind, anomaly_id, now)
        incident = self.incidents.open(fresh)
        if incident is fresh and self._on_incident is not None:
            self._on_incident(incident)
        return incident

    def _update_incident(self, agent: str, **changes: Any) -> None:
        updated = self.incidents.update(agent, **changes)
        if updated is not None and self._on_incident is not None:
            self._on_incident(updated)  # the checkpoint and standby are known now

    def _close_incident(self, agent: str, now: int) -> None:
        done = self.incidents.close(agent, now)
        if done is not None and self._on_incident is not None:
            self._on_incident(done)

    def _transition_command(self, t: Transition) -> ControlCommand:
        return ControlCommand(
            type=CONTROL_TYPE_BREAKER,
            agent=t.agent,
            state=t.to_state,
            reason=t.reason,
            anomaly_id=t.anomaly_id,
            issued_ns=t.at_ns,
        )

    def _send_transition(self, t: Transition) -> None:
        # Runs under the breakers' lock, before the transition is saved: store the command first.
        if not t.shadow:
            self._send(self._transition_command(t), f"breaker:{t.to_state}:v{t.version}")

    def _send(self, command: ControlCommand, decision: str, *, url: str | None = None) -> None:
        url = url if url is not None else self._url(command.agent)
        self._delivery.send_command(command, decision, url)


def _newest_step(lookup: CheckpointLookup, agent: str) -> int:
    newest = latest_checkpoint(lookup.checkpoints(agent))
    return newest.step if newest is not None else -1
