"""Remediator: turns anomalies into breaker commands and notifications, sent in the background."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from agentwatch.sdk.semconv import (
    BREAKER_CLOSED,
    BREAKER_FORCED_OPEN,
    BREAKER_OPEN,
    CONTROL_TYPE_BREAKER,
)

from ._anomaly import AnomalyLike
from ._control import ControlCommand, ControlSender
from ._delivery import Delivery
from ._dispatcher import LANE_CONTROL, LANE_NOTIFY, Dispatcher
from ._policy import RemediationPolicy
from ._slack import Notification, Receiver

logger = logging.getLogger(__name__)

NO_CONTROL_URL = "agent has no control URL yet"


class Remediator:
    """Decides what each anomaly calls for and hands the deliveries to a :class:`Dispatcher`.

    For every anomaly: the policy's commands go to the agent's control URL on the control lane
    (a breaker already open for that agent is not sent again), and a notification goes to
    ``slack`` on the notify lane. The service's breaker state changes when the command is decided,
    not when it is delivered, since agents also pull their state from the API.

    Thread-safe; :meth:`handle` never blocks on the network and never raises on delivery problems.
    ``on_delivery`` is called with every outcome, on a worker thread (or on the caller's thread when
    nothing could be queued); it must be thread-safe and quick.

    Args:
        policy: Which commands an anomaly calls for.
        control_client: Sends control commands (:class:`ControlWebhookClient`).
        slack: Where notifications go; None for none.
        dispatcher: Runs deliveries; :meth:`shutdown` shuts it down.
        on_delivery: Observer of every delivery outcome (metrics, the notification log).
        clock: Wall clock in ns, for the commands' ``issued_at``.
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
    ) -> None:
        self.policy = policy
        self._control = control_client
        self._slack = slack
        self._dispatcher = dispatcher
        self._on_delivery = on_delivery
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, str] = {}
        # Agents whose current breaker state was decided but never queued for delivery.
        self._unpushed: set[str] = set()
        self._dropped = 0

    @property
    def dropped_total(self) -> int:
        """Deliveries not attempted because a dispatcher queue was full or shut down."""
        with self._lock:
            return self._dropped

    def breaker_state(self, agent: str) -> str:
        """Return the breaker state decided for ``agent`` (``"closed"`` when never opened)."""
        with self._lock:
            return self._breakers.get(agent, BREAKER_CLOSED)

    def handle(self, anomaly: AnomalyLike, control_url: str | None) -> list[ControlCommand]:
        """Decide and dispatch what ``anomaly`` calls for. Non-blocking.

        Args:
            anomaly: The finding.
            control_url: The agent's control webhook URL, None while it has not announced one.

        Returns:
            The commands newly issued (a breaker already open for the agent is left out).
        """
        commands = self.policy.decide(anomaly, now_ns=self._clock())
        issued: list[ControlCommand] = []
        with self._lock:
            for command in commands:
                if command.type == CONTROL_TYPE_BREAKER and not self._breaker_changes(
                    command, control_url
                ):
                    continue
                self._breakers[command.agent] = command.state
                issued.append(command)
        for command in issued:
            self._dispatch_control(command, control_url)
        if self._slack is not None:
            self._dispatch_notification(Notification.from_anomaly(anomaly))
        return issued

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish for up to ``timeout_s``, then stop retries and the workers.

        Blocks up to about ``timeout_s``; the clients' shutdown (when they have one) interrupts
        deliveries still retrying after that. Idempotent.
        """
        self._dispatcher.force_flush(timeout_s)
        for client in (self._control, self._slack):
            stop = getattr(client, "shutdown", None)
            if callable(stop):
                stop()
        self._dispatcher.shutdown(timeout_s=timeout_s)

    # --- internals ---------------------------------------------------------------------------

    def _breaker_changes(self, command: ControlCommand, control_url: str | None) -> bool:
        current = self._breakers.get(command.agent, BREAKER_CLOSED)
        same = current == command.state or (
            command.state == BREAKER_OPEN and current == BREAKER_FORCED_OPEN
        )
        if not same:
            return True
        # Already decided; push it once the agent has a URL if it never went out.
        return control_url is not None and command.agent in self._unpushed

    def _dispatch_control(self, command: ControlCommand, control_url: str | None) -> None:
        if control_url is None:
            with self._lock:
                self._unpushed.add(command.agent)
            logger.warning(
                "%s %s for agent %s not sent: %s",
                command.type,
                command.state or command.checkpoint_id,
                command.agent,
                NO_CONTROL_URL,
            )
            self._report(self._failure("control", NO_CONTROL_URL), _tag(command))
            return
        url = control_url
        queued = self._dispatcher.submit(
            LANE_CONTROL,
            lambda: self._control.send(url, command),
            self._on_control_result(command),
            key=command.agent,
        )
        with self._lock:
            if queued:
                self._unpushed.discard(command.agent)
            else:
                self._unpushed.add(command.agent)
                self._dropped += 1
        if not queued:
            logger.warning(
                "control queue full; %s for agent %s dropped", command.type, command.agent
            )
            self._report(self._failure("control", "control queue full"), _tag(command))

    def _dispatch_notification(self, notification: Notification) -> None:
        slack = self._slack
        assert slack is not None
        tag = (notification.agent, "notify", notification.anomaly_id)
        queued = self._dispatcher.submit(
            LANE_NOTIFY,
            lambda: slack.send(notification),
            lambda delivery: self._on_notify_result(delivery, tag),
        )
        if not queued:
            with self._lock:
                self._dropped += 1
            logger.warning("notify queue full; notification %s dropped", notification.anomaly_id)
            self._report(self._failure("slack", "notify queue full"), tag)

    def _on_control_result(self, command: ControlCommand) -> Callable[[Delivery], None]:
        def on_result(delivery: Delivery) -> None:
            if not delivery.ok:
                logger.warning(
                    "%s for agent %s failed after %d attempts (webhook-id %s): %s",
                    command.type,
                    command.agent,
                    delivery.attempts,
                    delivery.webhook_id,
                    delivery.error,
                )
            self._report(delivery, _tag(command))

        return on_result

    def _on_notify_result(self, delivery: Delivery, tag: tuple[str, str, str]) -> None:
        if not delivery.ok:
            logger.warning(
                "slack notification failed after %d attempts: %s", delivery.attempts, delivery.error
            )
        self._report(delivery, tag)

    def _failure(self, target: str, error: str) -> Delivery:
        now = self._clock()
        return Delivery(
            target=target,
            webhook_id="",
            attempts=0,
            status_code=None,
            ok=False,
            error=error,
            started_ns=now,
            finished_ns=now,
        )

    def _report(self, delivery: Delivery, tag: tuple[str, str, str]) -> None:
        if self._on_delivery is None:
            return
        agent, action, anomaly_id = tag
        try:
            self._on_delivery(
                dataclasses.replace(delivery, agent=agent, action=action, anomaly_id=anomaly_id)
            )
        except Exception:
            logger.exception("on_delivery callback failed")


def _tag(command: ControlCommand) -> tuple[str, str, str]:
    """(agent, action, anomaly id) of a control command, for its delivery record."""
    action = f"{command.type}:{command.state or command.checkpoint_id}"
    return command.agent, action, command.anomaly_id
