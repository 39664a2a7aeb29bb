"""How a :class:`~._remediator.Remediator`'s decisions leave: commands and notifications.

With an :class:`Outbox`, a control command becomes an :class:`OutboundMessage` stored durably under
a webhook-id derived from its decision (:func:`control_webhook_id`), so a decision replayed after a
crash is never sent twice; without one (or while the agent has no control URL) it goes through the
:class:`Dispatcher`'s control lane. Notifications go through the notify lane. Every outcome, a
command that could not even be queued included, reaches ``on_delivery`` tagged with the agent, the
action and the anomaly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from ._control import ControlCommand, ControlSender
from ._delivery import Delivery
from ._dispatcher import LANE_CONTROL, LANE_NOTIFY, Dispatcher
from ._notification import PRIORITY_CONTROL, OutboundMessage, stable_id
from ._outbox import Outbox
from ._slack import Notification, Receiver

logger = logging.getLogger(__name__)

NO_CONTROL_URL = "agent has no control URL yet"


def control_webhook_id(agent: str, decision: str) -> str:
    """The webhook-id of the control command ``decision`` sends to ``agent`` through an outbox."""
    return stable_id("control", agent, decision)


class RemediationDelivery:
    """Sends control commands and notifications without blocking on the network.

    Thread-safe; no method raises on delivery problems. ``on_delivery`` gets every outcome, on a
    worker thread (or the caller's when nothing could be queued); it must be thread-safe and quick.

    Args:
        control_client: Sends control commands without an outbox (:class:`ControlWebhookClient`).
        slack: Where notifications go; None for none. Read-only after construction.
        dispatcher: Runs deliveries; :meth:`shutdown` shuts it down.
        outbox: When given, control commands to an agent with a URL are stored there and sent by
            it (durable); None sends them through ``dispatcher``. Read-only after construction.
        on_delivery: Observer of every delivery outcome (metrics, the notification log).
        clock: Wall clock in ns, for the times of deliveries that never started.
    """

    def __init__(
        self,
        control_client: ControlSender,
        *,
        slack: Receiver | None,
        dispatcher: Dispatcher,
        outbox: Outbox | None,
        on_delivery: Callable[[Delivery], None] | None,
        clock: Callable[[], int],
    ) -> None:
        self._control = control_client
        self.slack = slack
        self._dispatcher = dispatcher
        self.outbox = outbox
        self._on_delivery = on_delivery
        self._clock = clock
        self._lock = threading.Lock()
        # Agents whose current breaker state was decided but never queued for delivery.
        self._unpushed: set[str] = set()
        self._dropped = 0

    @property
    def dropped_total(self) -> int:
        """Deliveries not attempted because a dispatcher queue was full or shut down."""
        with self._lock:
            return self._dropped

    def unpushed(self, agent: str) -> bool:
        """True when the last command for ``agent`` was decided but never queued for delivery."""
        with self._lock:
            return agent in self._unpushed

    def send_command(self, command: ControlCommand, decision: str, url: str | None) -> None:
        """Send ``command`` to ``url``: through the outbox under ``decision``'s webhook-id when
        there is one and ``url`` is known, else through the control lane. Non-blocking (with an
        outbox, one fsync'd insert)."""
        if self.outbox is None or url is None:
            self._dispatch_control(command, url)
            return
        message = OutboundMessage(
            webhook_id=control_webhook_id(command.agent, decision),
            destination=f"control:{command.agent}",
            target="control",
            url=url,
            body=command.to_body(),
            priority=PRIORITY_CONTROL,
            agent=command.agent,
            action=_tag(command)[1],
            anomaly_id=command.anomaly_id,
        )
        self.outbox.enqueue(message)
        with self._lock:
            self._unpushed.discard(command.agent)

    def notify(self, notification: Notification) -> None:
        """Queue ``notification`` for ``slack`` on the notify lane; a full queue drops it
        (counted and reported). Non-blocking; call only when ``slack`` is set."""
        slack = self.slack
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

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish for up to ``timeout_s``, then stop retries and the workers.

        Blocks up to about ``timeout_s``; the clients' shutdown (when they have one) interrupts
        deliveries still retrying after that. Idempotent. An outbox is left to its owner.
        """
        self._dispatcher.force_flush(timeout_s)
        for client in (self._control, self.slack):
            stop = getattr(client, "shutdown", None)
            if callable(stop):
                stop()
        self._dispatcher.shutdown(timeout_s=timeout_s)

    # --- internals ---------------------------------------------------------------------------

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
