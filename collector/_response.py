"""The service's response to anomalies: breakers, control webhooks, rollback, alerts.

Builds the alerts package's parts from the settings and keeps them together: a durable outbox
(signed control webhooks and grouped notifications survive a crash), persisted per-agent
breakers, rollback checkpoints looked up in ``otel_traces``, and an Alertmanager-style engine
when ``alerting`` is configured. Every breaker transition and delivery is logged in
``agentwatch_remediations``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwatch.alerts import (
    AgentBreakers,
    AlertManager,
    Checkpoint,
    ControlCommand,
    ControlWebhookClient,
    Delivery,
    Dispatcher,
    Incident,
    Outbox,
    RemediationPolicy,
    Remediator,
    SlackReceiver,
    Transition,
    build_receivers,
)
from agentwatch.detectors import Anomaly
from agentwatch.sdk import semconv

from ._schema import TRACES_TABLE
from ._settings import ServiceSettings
from ._storage import Storage, StorageError

logger = logging.getLogger(__name__)


class ClickHouseCheckpoints:
    """``CheckpointLookup`` over the agent's ``agentwatch.checkpoint`` spans."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def checkpoints(self, agent: str) -> list[Checkpoint]:
        try:
            _, rows = self.storage.query(
                f"SELECT SpanAttributes['{semconv.CHECKPOINT_ID}'],"
                f" toInt64OrZero(SpanAttributes['{semconv.CHECKPOINT_STEP}']),"
                f" toUnixTimestamp64Nano(Timestamp) FROM {TRACES_TABLE}"
                f" WHERE SpanName = '{semconv.SPAN_CHECKPOINT}'"
                f" AND ResourceAttributes['{semconv.SERVICE_INSTANCE_ID}'] = {{agent:String}}"
                " ORDER BY Timestamp",
                {"agent": agent},
            )
        except StorageError as exc:
            logger.warning("checkpoint lookup for agent %s failed: %s", agent, exc)
            return []
        return [Checkpoint(str(cid), int(step), int(ts)) for cid, step, ts in rows]


class _UnsignedControl:
    """Stands in for the control client when no secret is set: agents accept only signed
    webhooks, so nothing is sent and each refusal is logged as a failed delivery."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock

    def send(self, url: str, command: ControlCommand, /) -> Delivery:
        now = self._clock()
        return Delivery(
            target="control",
            webhook_id="",
            attempts=0,
            status_code=None,
            ok=False,
            error=f"{semconv.WEBHOOK_SECRET_ENV} is not set: control webhooks cannot be signed",
            started_ns=now,
            finished_ns=now,
        )


class Response:
    """Remediation and alerting, wired from settings.

    Args:
        settings: The service's settings.
        storage: For checkpoint lookups.
        on_delivery: Every delivery attempt series (the caller logs it).
        on_transition: Every breaker transition (the caller logs it).
        clock: Wall clock, ns.

    Thread-safe.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        storage: Storage,
        *,
        on_delivery: Callable[[Delivery], None],
        on_transition: Callable[[Transition], None],
        on_incident: Callable[[Incident], None] | None = None,
        clock: Callable[[], int],
    ) -> None:
        state_dir = Path(settings.data_dir) / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        secret = settings.webhook_secret
        # Without a secret nothing can be signed: keep control off the durable outbox.
        self.outbox = (
            Outbox(state_dir / "outbox.sqlite3", secret=secret, on_delivery=on_delivery)
            if secret
            else None
        )
        self.breakers = AgentBreakers(
            state_dir / "breakers.json",
            open_wait_s=settings.breaker_open_wait_s,
            probe_actions=settings.breaker_probe_actions,
            shadow=settings.shadow,
            clock=clock,
            on_transition=self._transition,
        )
        self._on_transition = on_transition
        self._not_closed: set[str] = set()
        self._ticks = 0
        self._lock = threading.Lock()
        self.dispatcher = Dispatcher()
        self.remediator = Remediator(
            RemediationPolicy(
                breaker_min_severity=settings.breaker_min_severity,
                per_detector=dict(settings.breaker_policy),
                rollback_min_severity=settings.rollback_min_severity,
            ),
            ControlWebhookClient(secret) if secret else _UnsignedControl(clock),
            slack=SlackReceiver(settings.slack_webhook_url) if settings.slack_webhook_url else None,
            dispatcher=self.dispatcher,
            on_delivery=on_delivery,
            clock=clock,
            breakers=self.breakers,
            outbox=self.outbox,
            checkpoints=ClickHouseCheckpoints(storage),
            on_incident=on_incident,
        )
        self.alerts: AlertManager | None = None
        if settings.alerting is not None:
            assert self.outbox is not None  # ServiceSettings requires the secret
            receivers = build_receivers(settings.alerting.get("receivers", ()))
            self.alerts = AlertManager(
                settings.alerting,
                receivers,
                sink=self.outbox.enqueue,
                state_dir=state_dir / "alerts",
                clock=clock,
            )

    def start(self) -> None:
        if self.outbox is not None:
            self.outbox.start()

    def _transition(self, transition: Transition) -> None:
        with self._lock:
            if transition.to_state == semconv.BREAKER_CLOSED:
                self._not_closed.discard(transition.agent)
            else:
                self._not_closed.add(transition.agent)
        self._on_transition(transition)

    def handle(self, anomaly: Anomaly, control_url: str | None) -> list[ControlCommand]:
        """Remediate first (never waits for group timers), then alert."""
        issued = self.remediator.handle(anomaly, control_url)
        if self.alerts is not None:
            self.alerts.push(anomaly)
        return issued

    def observe_action(self, agent: str) -> None:
        """A normal action: counts as a probe while the agent's breaker is HALF_OPEN."""
        with self._lock:
            if agent not in self._not_closed:
                return
        self.remediator.record_normal_action(agent)

    def tick(self) -> None:
        """Timers: OPEN -> HALF_OPEN after the wait, alert group flushes, outbox retention."""
        self.remediator.tick()
        if self.alerts is not None:
            self.alerts.tick()
        self._ticks += 1
        if self.outbox is not None and self._ticks % 3600 == 0:  # about hourly
            pruned = self.outbox.prune()
            if pruned:
                logger.info("outbox: pruned %d finished messages", pruned)

    def control_state(self, agent: str) -> dict[str, Any]:
        status = self.breakers.status(agent)
        return {
            "agent": agent,
            "breaker": status.state,
            "reason": status.reason,
            "anomaly_id": status.anomaly_id,
            "version": status.version,
            "rollback": self.remediator.pending_rollback(agent),
        }

    def flush(self, timeout_s: float) -> bool:
        ok = self.dispatcher.force_flush(timeout_s)
        if self.outbox is not None:
            ok = self.outbox.force_flush(timeout_s) and ok
        return ok

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.remediator.shutdown(timeout_s)
        if self.outbox is not None:
            self.outbox.shutdown(timeout_s)
            self.outbox.close()
