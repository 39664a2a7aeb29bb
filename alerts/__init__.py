"""Alerts and remediation: tell people, and tell agent runtimes to stop.

Contract:

- :class:`Remediator` takes each anomaly (anything shaped like :class:`AnomalyLike`, such as
  ``agentwatch.detectors.Anomaly``; this package never imports the detectors), asks a
  :class:`RemediationPolicy` for control commands (a circuit breaker opens for the anomaly's
  agent when its severity reaches the threshold for its detector), sends each as a Standard
  Webhooks-signed POST through a :class:`ControlWebhookClient`, and notifies people through a
  :class:`Receiver` such as :class:`SlackReceiver` (Block Kit, 1 message/s, 429 ``Retry-After``).
- Deliveries run on a :class:`Dispatcher`'s background threads with separate lanes, so a slow
  receiver never delays a breaker; ``handle`` never blocks on the network.
- Every outbound call retries only 429, 502, 503, 504 and connection errors, with exponential
  backoff and jitter, ``Retry-After``, an overall deadline and a shutdown event, under the same
  ``webhook-id``; it returns a :class:`Delivery` instead of raising.
- Webhook URLs and secrets are never logged.
- Queued deliveries live in memory and are lost on a crash until the durable outbox lands.

Imports only httpx, the standard library and ``agentwatch.sdk.semconv``.
"""

from ._anomaly import AnomalyLike, severity_rank
from ._control import ControlCommand, ControlSender, ControlWebhookClient
from ._delivery import Delivery, RetryPolicy, parse_retry_after, post_with_retry
from ._dispatcher import LANE_CONTROL, LANE_NOTIFY, Dispatcher
from ._policy import NEVER, RemediationPolicy
from ._remediator import Remediator
from ._signing import new_webhook_id, sign, signed_headers
from ._slack import Notification, Receiver, SlackReceiver, slack_payload

__all__ = [
    "LANE_CONTROL",
    "LANE_NOTIFY",
    "NEVER",
    "AnomalyLike",
    "ControlCommand",
    "ControlSender",
    "ControlWebhookClient",
    "Delivery",
    "Dispatcher",
    "Notification",
    "Receiver",
    "RemediationPolicy",
    "Remediator",
    "RetryPolicy",
    "SlackReceiver",
    "new_webhook_id",
    "parse_retry_after",
    "post_with_retry",
    "severity_rank",
    "sign",
    "signed_headers",
    "slack_payload",
]
