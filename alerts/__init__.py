"""Alerts and remediation: Alertmanager's semantics for people, signed commands for agents.

Contract:

- **Alerts** (:class:`AlertManager`). An alert's identity is its label set (``alertname`` = the
  detector, ``agent``, ``service``, ``severity``, ``env``) with Prometheus' fingerprint; it fires
  until its end time (``resolve_timeout``, default 5m, after its last push) or an explicit
  :meth:`AlertManager.resolve`. Annotations: ``summary``, ``evidence`` (JSON), ``postmortem_query``
  (ClickHouse SQL), ``anomaly_id``, ``score``, ``threshold``, ``trace_id``. The config mapping has
  Alertmanager's shape::

      route: {receiver, group_by (incl. "..."), group_wait 30s, group_interval 5m,
              repeat_interval 4h, matchers ['a="b"', 'c=~"x|y"', ...], continue, routes: [...]}
      inhibit_rules: [{source_matchers, target_matchers, equal}]
      resolve_timeout: 5m        # also read from global.resolve_timeout
      external_url: https://...  # links in payloads
      env: prod                  # the env label of alerts made from anomalies

  Routing, grouping, group keys, inhibition, silences and the dedup rules (``needsUpdate``) are
  Alertmanager's, with a ``notification_reason``. Nothing runs by itself: ``tick(now_ns)`` runs
  every flush due up to then, each at its own time (virtual time in tests); an
  :class:`AlertManagerRunner` thread calls it on the wall clock. The notification log
  (``nflog.json``) and silences (``silences.json``) in ``state_dir`` are written atomically
  (temp file, fsync, rename) and reloaded at start. Active alerts are not persisted (as in
  Alertmanager, sources re-send them); the log keeps a restart from notifying twice.
- **Receivers** are :class:`Integration` objects that render a :class:`GroupNotification`:
  :class:`WebhookIntegration` (Alertmanager's v4 payload, field for field, plus
  ``notification_reason``), :class:`PagerDutyIntegration` (Events API v2, trigger/resolve,
  ``dedup_key`` = SHA-256 of the group key) and :class:`SlackIntegration` (Block Kit, grouped).
- **Delivery** (:class:`Outbox`): rendered messages and control commands are stored in SQLite (WAL,
  ``synchronous=FULL``) before the first attempt, signed (Standard Webhooks) on every attempt
  under a webhook-id derived from the decision, and retried (408, 429, 5xx, transport errors;
  ``Retry-After``; backoff 0.5 s x1.5 with jitter, capped) until delivered, refused (other 4xx)
  or ``max_age_s`` old. One message in flight per destination, in order; a breaker per
  destination; control commands before notifications. ``drain()`` on virtual time, or
  ``start(workers)`` threads.
- **Remediation** (:class:`Remediator`): per-agent breakers (:class:`AgentBreakers`: CLOSED, OPEN,
  HALF_OPEN after ``open_wait_s``, CLOSED after ``probe_actions`` normal actions, FORCED_OPEN by
  hand, METRICS_ONLY shadow mode), every transition reported; rollback to the newest checkpoint
  strictly before the anomaly's onset (:class:`CheckpointLookup`); failover of a lost agent's
  last checkpoint to its registered standby; :class:`Incident` with RTO and RPO. It never waits
  for group timers; without an outbox it uses the in-memory :class:`Dispatcher` as before.

Wiring (service)::

    outbox = Outbox(state_dir / "outbox.sqlite3", secret=secret, on_delivery=log_attempt)
    manager = AlertManager(config["alerting"], {"pd": PagerDutyIntegration(key), ...},
                           sink=outbox.enqueue, state_dir=state_dir)
    breakers = AgentBreakers(state_dir / "breakers.json", on_transition=log_transition)
    remediator = Remediator(policy, control_client, dispatcher=Dispatcher(), breakers=breakers,
                            outbox=outbox, checkpoints=lookup)
    outbox.start(); AlertManagerRunner(manager).start()
    # per anomaly: remediator.handle(anomaly, url); manager.push(anomaly)
    # periodically: remediator.tick()

Webhook URLs, routing keys and secrets are never logged. Imports only httpx, the standard library,
``agentwatch.sdk.semconv`` and ``agentwatch.sdk.webhooks``.
"""

from ._alert import Alert, alert_from_anomaly, postmortem_query
from ._anomaly import AnomalyLike, severity_rank
from ._breaker import BREAKER_METRICS_ONLY, AgentBreakers, BreakerStatus, Transition
from ._config import build_receivers
from ._control import ControlCommand, ControlSender, ControlWebhookClient
from ._delivery import Delivery, RetryPolicy, parse_retry_after, post_with_retry
from ._dispatcher import LANE_CONTROL, LANE_NOTIFY, Dispatcher
from ._engine import AlertManager, AlertManagerRunner
from ._labels import Matcher, fingerprint
from ._nflog import NotificationLog, needs_update
from ._notification import GroupNotification, Integration, OutboundMessage, webhook_payload
from ._outbox import Outbox, classify
from ._policy import NEVER, RemediationPolicy
from ._receivers import (
    PagerDutyIntegration,
    SlackIntegration,
    WebhookIntegration,
    dedup_key,
    pagerduty_payload,
    slack_group_payload,
)
from ._recovery import Checkpoint, CheckpointLookup, Incident, checkpoint_before
from ._remediator import Remediator
from ._route import InhibitRule, Route, build_route, parse_duration
from ._signing import new_webhook_id, sign, signed_headers
from ._silence import Silence, SilenceError, Silences
from ._slack import Notification, Receiver, SlackReceiver, slack_payload

__all__ = [
    "BREAKER_METRICS_ONLY",
    "LANE_CONTROL",
    "LANE_NOTIFY",
    "NEVER",
    "AgentBreakers",
    "Alert",
    "AlertManager",
    "AlertManagerRunner",
    "AnomalyLike",
    "BreakerStatus",
    "Checkpoint",
    "CheckpointLookup",
    "ControlCommand",
    "ControlSender",
    "ControlWebhookClient",
    "Delivery",
    "Dispatcher",
    "GroupNotification",
    "Incident",
    "InhibitRule",
    "Integration",
    "Matcher",
    "Notification",
    "NotificationLog",
    "OutboundMessage",
    "Outbox",
    "PagerDutyIntegration",
    "Receiver",
    "RemediationPolicy",
    "Remediator",
    "RetryPolicy",
    "Route",
    "Silence",
    "SilenceError",
    "Silences",
    "SlackIntegration",
    "SlackReceiver",
    "Transition",
    "WebhookIntegration",
    "alert_from_anomaly",
    "build_receivers",
    "build_route",
    "checkpoint_before",
    "classify",
    "dedup_key",
    "fingerprint",
    "needs_update",
    "new_webhook_id",
    "pagerduty_payload",
    "parse_duration",
    "parse_retry_after",
    "post_with_retry",
    "postmortem_query",
    "severity_rank",
    "sign",
    "signed_headers",
    "slack_group_payload",
    "slack_payload",
    "webhook_payload",
]
