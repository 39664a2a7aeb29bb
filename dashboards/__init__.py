"""Grafana dashboards and provisioning as code (grafana-foundation-sdk, Grafana 11.6 models).

Contract:
    * :func:`export` writes four dashboards (Fleet, Agent, Incidents, Service health) as JSON
      and the provisioning files (ClickHouse datasource in OTel traces mode over ``otel_traces``,
      Prometheus datasource, dashboard provider, Grafana-managed alert rules), laid out as a
      Grafana provisioning directory.
    * Panels query ClickHouse through the ``grafana-clickhouse-datasource`` plugin with a
      dataquery variant registered in the SDK's runtime (:class:`ClickHouseQuery`), so every
      dashboard round-trips through the SDK's models (:func:`dashboard_from_json`).
    * SQL is spelled from the storage schema's table names and the telemetry contract's attribute
      constants; :func:`expand` expands it exactly as Grafana and the plugin do, which is how the
      tests run every panel against the real schema.

Dependencies: grafana-foundation-sdk, PyYAML, the schema's and the SDK semconv's names.
"""

from ._clickhouse import (
    PLUGIN_ID,
    ClickHouseAnnotationTarget,
    ClickHouseQuery,
    ClickHouseQueryBuilder,
    Format,
    dashboard_from_json,
    register,
)
from ._export import HELP, build_dashboards, export, to_json
from ._macros import Selection, expand
from ._provisioning import Endpoints, alert_rules, dashboard_provider, datasources

__all__ = [
    "HELP",
    "PLUGIN_ID",
    "ClickHouseAnnotationTarget",
    "ClickHouseQuery",
    "ClickHouseQueryBuilder",
    "Endpoints",
    "Format",
    "Selection",
    "alert_rules",
    "build_dashboards",
    "dashboard_from_json",
    "dashboard_provider",
    "datasources",
    "expand",
    "export",
    "register",
    "to_json",
]
