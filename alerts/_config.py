"""Receivers from configuration: the ``receivers:`` list of Alertmanager's YAML shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._notification import Integration
from ._receivers import PagerDutyIntegration, SlackIntegration, WebhookIntegration


def build_receivers(receivers: Sequence[Mapping[str, Any]]) -> dict[str, list[Integration]]:
    """Integrations by receiver name.

    Each item: ``{name, webhook_configs: [{url, send_resolved, max_alerts}],
    pagerduty_configs: [{routing_key, url, send_resolved}], slack_configs: [{api_url,
    send_resolved}]}``, as in Alertmanager.

    Raises:
        ValueError: A receiver has no name, a duplicate name, or a config lacks its URL/key;
            the message names the receiver and the field.
    """
    out: dict[str, list[Integration]] = {}
    for index, receiver in enumerate(receivers):
        name = receiver.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"receivers[{index}].name must be a non-empty string")
        if name in out:
            raise ValueError(f"receivers[{index}]: duplicate receiver name {name!r}")
        integrations: list[Integration] = []
        for config in receiver.get("webhook_configs", ()):
            integrations.append(
                WebhookIntegration(
                    _required(config, "url", name, "webhook_configs"),
                    send_resolved=bool(config.get("send_resolved", True)),
                    max_alerts=int(config.get("max_alerts", 0)),
                )
            )
        for config in receiver.get("pagerduty_configs", ()):
            extra = {"url": str(config["url"])} if config.get("url") else {}
            integrations.append(
                PagerDutyIntegration(
                    _required(config, "routing_key", name, "pagerduty_configs"),
                    send_resolved=bool(config.get("send_resolved", True)),
                    **extra,
                )
            )
        for config in receiver.get("slack_configs", ()):
            integrations.append(
                SlackIntegration(
                    _required(config, "api_url", name, "slack_configs"),
                    send_resolved=bool(config.get("send_resolved", False)),
                )
            )
        out[name] = integrations
    return out


def _required(config: Mapping[str, Any], key: str, receiver: str, section: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"receiver {receiver!r}: {section}[].{key} is required")
    return value
