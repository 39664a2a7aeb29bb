"""A grafana-foundation-sdk dataquery variant for the ``grafana-clickhouse-datasource`` plugin.

The SDK ships builders for Grafana's core datasources only; third-party plugins plug in through
its custom-dataquery extension: a ``cog.variants.Dataquery`` subclass with ``to_json`` /
``from_json``, a builder, and a ``cog.runtime.DataqueryConfig`` registered under the plugin
id, so that ``Dashboard.from_json`` decodes the panels' targets back into :class:`ClickHouseQuery`
instead of an opaque ``UnknownDataquery``.

The SDK (11.6 models) types an annotation's ``target`` as Grafana's built-in annotation target
(limit, matchAny, tags, type) and has no hook for other shapes, so a ClickHouse annotation query
(``target.rawSql``) would be dropped on decoding. :class:`ClickHouseAnnotationTarget` carries both
shapes, and :func:`dashboard_from_json` decodes with the SDK and then restores those targets.
"""

from __future__ import annotations

import enum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

PLUGIN_ID = "grafana-clickhouse-datasource"


class Format(enum.IntEnum):
    """The plugin's (sqlds') ``format`` values: how the backend shapes the result frame."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2
    TRACE = 3


class EditorType(enum.StrEnum):
    SQL = "sql"
    BUILDER = "builder"


class QueryType(enum.StrEnum):
    """The plugin's ``queryType``: the preferred visualisation in Explore."""

    TABLE = "table"
    LOGS = "logs"
    TIME_SERIES = "timeseries"
    TRACES = "traces"


class ClickHouseQuery(cogvariants.Dataquery):
    """One ClickHouse SQL target, as the plugin stores it in dashboard JSON."""

    def __init__(
        self,
        raw_sql: str = "",
        *,
        ref_id: str = "",
        editor_type: EditorType = EditorType.SQL,
        format_val: Format | None = None,
        query_type: QueryType | None = None,
        hide: bool | None = None,
        datasource: dashboard.DataSourceRef | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.editor_type = editor_type
        self.format_val = format_val
        self.query_type = query_type
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
            "editorType": str(self.editor_type),
        }
        if self.format_val is not None:
            payload["format"] = int(self.format_val)
        if self.query_type is not None:
            payload["queryType"] = str(self.query_type)
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            data.get("rawSql", ""),
            ref_id=data.get("refId", ""),
            editor_type=EditorType(data.get("editorType", EditorType.SQL)),
            format_val=Format(data["format"]) if "format" in data else None,
            query_type=QueryType(data["queryType"]) if "queryType" in data else None,
            hide=data.get("hide"),
            datasource=(
                dashboard.DataSourceRef.from_json(data["datasource"])
                if "datasource" in data
                else None
            ),
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`ClickHouseQuery`, in the SDK builders' fluent style.

    Example:
        >>> q = ClickHouseQueryBuilder("SELECT 1").ref_id("A").format(Format.TABLE).build()
        >>> q.to_json()["format"]
        1
    """

    def __init__(self, raw_sql: str) -> None:
        self._internal = ClickHouseQuery(raw_sql)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, format_val: Format) -> Self:
        self._internal.format_val = format_val
        return self

    def query_type(self, query_type: QueryType) -> Self:
        self._internal.query_type = query_type
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self

    def datasource(self, datasource: dashboard.DataSourceRef) -> Self:
        self._internal.datasource = datasource
        return self


def variant_config() -> cogruntime.DataqueryConfig:
    return cogruntime.DataqueryConfig(
        identifier=PLUGIN_ID, from_json_hook=ClickHouseQuery.from_json
    )


def register() -> None:
    """Register the variant with the SDK's runtime (idempotent; the SDK's own mechanism)."""
    cogruntime.register_dataquery_variant(variant_config())


class ClickHouseAnnotationTarget(dashboard.AnnotationTarget):
    """An annotation target that also carries a ClickHouse SQL query.

    Grafana's built-in keys (limit, matchAny, tags, type) stay, the plugin ignores them; the
    plugin reads ``rawSql`` / ``editorType`` / ``format`` from the same object.
    """

    def __init__(self, query: ClickHouseQuery) -> None:
        super().__init__(limit=100, match_any=False, tags=[], type_val="tags")
        self.query = query

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), **self.query.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        target = cls(ClickHouseQuery.from_json(data))
        base = dashboard.AnnotationTarget.from_json(data)
        target.limit, target.match_any = base.limit, base.match_any
        target.tags, target.type_val = base.tags, base.type_val
        return target


class ClickHouseAnnotationTargetBuilder(cogbuilder.Builder[dashboard.AnnotationTarget]):
    def __init__(self, query: ClickHouseQuery) -> None:
        self._internal = ClickHouseAnnotationTarget(query)

    def build(self) -> ClickHouseAnnotationTarget:
        return self._internal


def dashboard_from_json(data: dict[str, Any]) -> dashboard.Dashboard:
    """Decode dashboard JSON into the SDK's models, keeping ClickHouse annotation queries.

    Thread-safety: registers the variant with the SDK's process-wide runtime first.
    """
    register()
    model = dashboard.Dashboard.from_json(data)
    raw = (data.get("annotations") or {}).get("list") or []
    decoded = (model.annotations.list_val or []) if model.annotations else []
    for item, annotation in zip(raw, decoded, strict=True):
        ds = item.get("datasource") or {}
        if ds.get("type") == PLUGIN_ID and "target" in item:
            annotation.target = ClickHouseAnnotationTarget.from_json(item["target"])
    return model
