"""Superset dashboards as code: "ROAS & Performance" and "Pipeline Ops", imported
idempotently (same UUIDs, overwrite) through Superset's REST API.

Every chart reads a Trino view of dashboards/trino/ as a dataset; the performance datasets
declare the shared measures of conf/measures.py as their metrics, so Superset, Metabase,
Grafana and `make demo` compute ROAS, CTR and CVR the same way. The bundle is Superset's
export format (YAML; written as JSON, which YAML reads)."""

from __future__ import annotations

import io
import json
import sys
import uuid
import zipfile
from dataclasses import dataclass, field

from conf.measures import PRESENTATION, view_measures
from conf.settings import Settings, get_settings
from dashboards.trino_views import qualified_name

NAMESPACE = uuid.UUID("7c1e6a52-4b0d-4f4e-9a43-2f1c5a0d9e11")  # every asset's UUID derives from its name
DATABASE_NAME = "Lakehouse (Trino)"
DATE_TYPES = ("date", "timestamp")
NO_FILTER = "No filter"
PERFORMANCE_VIEWS = ("campaign_performance_daily", "creative_performance_daily", "country_performance_daily",
                     "platform_performance_daily")


# What a reader sees for a view's column (Superset's verbose names); a measure's label and
# number format come from conf/measures.py.
COLUMN_LABELS = {
    "day": "Day", "hour": "Hour", "campaign_id": "Campaign", "campaign_name": "Campaign name",
    "creative_id": "Creative", "geo_country": "Country", "platform": "Platform", "budget_type": "Budget type",
    "budget_amount": "Budget", "spend": "Spend", "cumulative_spend": "Cumulative spend", "pacing": "Pacing",
    "reason": "Reason", "kafka_partition": "Kafka partition", "batch_timestamp": "Batch time",
    "batch_end_time": "Batch end", **{name: label for name, (label, _) in PRESENTATION.items()},
}
COLUMN_FORMATS = {"budget_amount": "$,.2f", "spend": "$,.2f", "cumulative_spend": "$,.2f", "pacing": ".1%",
                  **{name: number_format for name, (_, number_format) in PRESENTATION.items()}}
REFRESH_SECONDS = {"roas-performance": 60, "pipeline-ops": 10}  # Superset's own periodic dashboard refresh
TIME_OF_DAY, DATE = "%H:%M:%S", "%Y-%m-%d"


def asset_uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def sql_metric(expression: str, label: str) -> dict:
    return {"expressionType": "SQL", "sqlExpression": expression, "label": label}


def where(expression: str) -> dict:
    return {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": expression}


def day_range(column: str) -> dict:
    """The adhoc filter a dashboard's time-range filter fills in."""
    return {"expressionType": "SIMPLE", "clause": "WHERE", "subject": column, "operator": "TEMPORAL_RANGE",
            "comparator": NO_FILTER}


@dataclass
class Chart:
    key: str
    title: str
    view: str
    viz: str
    params: dict
    width: int  # of the dashboard's 12 columns
    height: int = 50
    filters: list[dict] = field(default_factory=list)


def big_number(key: str, title: str, view: str, metric, time_column: str | None, number_format: str,
               extra_filters: tuple[dict, ...] = (), width: int = 3) -> Chart:
    filters = [day_range(time_column)] if time_column else []
    return Chart(key, title, view, "big_number_total",
                 {"metric": metric, "y_axis_format": number_format, "header_font_size": 0.4,
                  "subheader_font_size": 0.15, "subheader": ""}, width, 30, [*filters, *extra_filters])


def timeseries(key: str, title: str, view: str, x: str, metrics: list, width: int, viz: str = "echarts_timeseries_line",
               groupby: list[str] | None = None, grain: str | None = None, extra_filters: tuple[dict, ...] = (),
               stacked: bool = False, time_format: str = TIME_OF_DAY, number_format: str = "SMART_NUMBER") -> Chart:
    return Chart(key, title, view, viz,
                 {"x_axis": x, "time_grain_sqla": grain, "metrics": metrics, "groupby": groupby or [],
                  "row_limit": 10000, "show_legend": True, "rich_tooltip": True, "markerEnabled": True,
                  "stack": "Stack" if stacked else None, "x_axis_sort_asc": True, "truncateXAxis": True,
                  "y_axis_format": number_format, "x_axis_time_format": time_format,
                  "tooltipTimeFormat": time_format},
                 width, 50, [day_range(x), *extra_filters])


def table(key: str, title: str, view: str, groupby: list[str], metrics: list[str], width: int, limit: int = 1000,
          order_by: str = "revenue") -> Chart:
    return Chart(key, title, view, "table",
                 {"query_mode": "aggregate", "groupby": groupby, "metrics": metrics, "row_limit": limit,
                  "timeseries_limit_metric": order_by, "order_desc": True, "table_timestamp_format": DATE},
                 width, 50, [day_range("day")])


MEASURES = [name for name, _ in view_measures()]
ROAS_CHARTS = [
    *(big_number(name, PRESENTATION[name][0], "campaign_performance_daily", name, "day", PRESENTATION[name][1])
      for name in ("roas", "revenue", "cost", "conversions")),
    timeseries("daily_trend", "Cost and revenue per day", "campaign_performance_daily", "day", ["cost", "revenue"],
               12, grain="P1D", time_format=DATE, number_format="$,.0f"),
    table("by_campaign", "Performance by campaign", "campaign_performance_daily", ["campaign_id"], MEASURES, 12),
    Chart("by_country", "Revenue by country", "country_performance_daily", "echarts_timeseries_bar",
          {"x_axis": "geo_country", "metrics": ["revenue", "cost"], "groupby": [], "row_limit": 10000,
           "x_axis_sort_series": "name", "x_axis_sort_asc": True, "show_legend": True,
           "y_axis_format": "$,.0f"}, 6, 50, [day_range("day")]),
    Chart("by_platform", "Revenue by platform", "platform_performance_daily", "pie",
          {"groupby": ["platform"], "metric": "revenue", "row_limit": 100, "show_legend": True,
           "show_labels": True, "label_type": "key_percent", "number_format": "$,.2f"}, 6, 50,
          [day_range("day")]),
    table("top_creatives", "Top 20 creatives by revenue", "creative_performance_daily", ["creative_id"],
          ["revenue", "cost", "roas", "conversions"], 12, limit=20),
    Chart("budget_pacing", "Budget pacing (budget in force at impression time)", "campaign_budget_pacing", "table",
          {"query_mode": "raw", "all_columns": ["day", "campaign_id", "campaign_name", "budget_type", "budget_amount",
                                                "spend", "cumulative_spend", "pacing"],
           "order_by_cols": [json.dumps(["day", True]), json.dumps(["campaign_id", True])], "row_limit": 1000,
           "table_timestamp_format": DATE,
           "column_config": {name: {"d3NumberFormat": COLUMN_FORMATS[name]}
                             for name in ("budget_amount", "spend", "cumulative_spend", "pacing")}},
          12, 50, [day_range("day")]),
]
# The attribution models job's defaults (jobs/attribution_models/job.py): a 28-day window
# over impressions and clicks.
MODEL_RUN = where("window_days = 28 AND touches = 'impressions+clicks'")
ROAS_CHARTS.append(
    Chart("model_comparison", "Model comparison: ROAS per campaign under each attribution model",
          "campaign_roas_by_model", "echarts_timeseries_bar",
          {"x_axis": "campaign_id", "metrics": [sql_metric("max(roas)", "ROAS")], "groupby": ["model"],
           "row_limit": 10000, "x_axis_sort_series": "name", "x_axis_sort_asc": True, "show_legend": True,
           "y_axis_format": ",.2f"}, 12, 60, [MODEL_RUN]))
ROAS_ROWS = [["roas", "revenue", "cost", "conversions"], ["daily_trend"], ["by_campaign"],
             ["by_country", "by_platform"], ["top_creatives"], ["budget_pacing"], ["model_comparison"]]

BATCHES_WITH_INPUT = where("num_input_rows > 0")
OPS_CHARTS = [
    big_number("latency", "End-to-end latency (s)", "pipeline_health",
               sql_metric("max(end_to_end_latency_seconds)", "seconds"), None, ",.1f"),
    big_number("freshness", "Gold freshness (s)", "pipeline_health",
               sql_metric("max(gold_freshness_seconds)", "seconds"), None, ",.1f"),
    big_number("lag_now", "Kafka consumer lag (now)", "pipeline_health", sql_metric("max(kafka_lag)", "records"),
               None, ",d", width=2),
    big_number("records_lost", "Kafka records lost (offset gaps)", "pipeline_health",
               sql_metric("max(kafka_records_lost)", "records"), None, ",d", width=2),
    big_number("click_before_impression", "Click-before-impression (fraud signal)", "audit_reasons_hourly",
               sql_metric("coalesce(sum(events), 0)", "events"), "hour", ",d",
               (where("reason = 'CLICK_BEFORE_IMPRESSION'"),), width=2),
    timeseries("latency_per_batch", "End-to-end latency per batch", "stream_batches", "batch_end_time",
               [sql_metric("max(end_to_end_latency_seconds)", "latency (s)")], 6, extra_filters=(BATCHES_WITH_INPUT,)),
    timeseries("lag_per_partition", "Kafka consumer lag per partition", "stream_partition_lag", "batch_timestamp",
               [sql_metric("max(kafka_lag)", "lag")], 6, groupby=["kafka_partition"]),
    timeseries("throughput", "Throughput (rows/s)", "stream_batches", "batch_timestamp",
               [sql_metric("max(input_rows_per_second)", "input"),
                sql_metric("max(processed_rows_per_second)", "processed")], 6, extra_filters=(BATCHES_WITH_INPUT,)),
    timeseries("batch_duration", "Batch duration (s)", "stream_batches", "batch_timestamp",
               [sql_metric("max(batch_duration_seconds)", "duration")], 6, extra_filters=(BATCHES_WITH_INPUT,)),
    timeseries("audit_reasons", "Audit reasons and fraud signals per hour", "audit_reasons_hourly", "hour",
               [sql_metric("sum(events)", "events")], 6, viz="echarts_timeseries_bar", groupby=["reason"],
               grain="PT1H", stacked=True),
    timeseries("kafka_keys", "Kafka keys missing or not the impression_id", "kafka_keys_hourly", "hour",
               [sql_metric("sum(null_keys)", "null keys"), sql_metric("sum(mismatched_keys)", "mismatched keys")], 6,
               grain="PT1H"),
]
OPS_ROWS = [["latency", "freshness", "lag_now", "records_lost", "click_before_impression"], ["latency_per_batch", "lag_per_partition"],
            ["throughput", "batch_duration"], ["audit_reasons", "kafka_keys"]]


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    charts: list[Chart]
    rows: list[list[str]]
    campaign_filter: bool


DASHBOARDS = (
    Dashboard("roas-performance", "ROAS & Performance",
              "Campaign performance from Gold (post-eligibility) through the Trino views; days are UTC impression days.",
              ROAS_CHARTS, ROAS_ROWS, campaign_filter=True),
    Dashboard("pipeline-ops", "Pipeline Ops",
              "The streaming job's health from ops.stream_progress, Bronze, Gold and the audit.",
              OPS_CHARTS, OPS_ROWS, campaign_filter=False),
)


def views_used() -> set[str]:
    return {chart.view for dashboard in DASHBOARDS for chart in dashboard.charts}


# --- the bundle


def trino_address(settings: Settings) -> tuple[str, int]:
    """Trino as Superset reaches it: the local stack's address when the local stack runs
    Superset, else the compose profile's (BI_TRINO_HOST, as for Metabase and Grafana)."""
    from stack.launcher import LocalStack

    local = LocalStack(settings)
    if local.process(next(s for s in local.services if s.name == "superset")):
        return settings.trino_host, settings.trino_port
    return settings.bi_trino_host, settings.bi_trino_port


def database_asset(settings: Settings, trino: tuple[str, int]) -> dict:
    host, port = trino
    return {"database_name": DATABASE_NAME,
            "sqlalchemy_uri": f"trino://{settings.trino_user}@{host}:{port}/{settings.catalog_name}",
            "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
            "allow_dml": False, "allow_csv_upload": False, "impersonate_user": False, "cache_timeout": None,
            "extra": {"allows_virtual_table_explore": True}, "uuid": asset_uuid("database"), "version": "1.0.0"}


def dataset_asset(view: str, prefix: str, columns: list[tuple[str, str]]) -> dict:
    """`columns`: (name, Trino type) in the view's order, as Trino describes it."""
    schema, table = qualified_name(view, prefix).split(".")[1:]
    temporal = [name for name, kind in columns if kind.startswith(DATE_TYPES)]
    metrics = view_measures() if view in PERFORMANCE_VIEWS else []
    # A virtual dataset named with the prefix: Superset's SQLite metadata keeps a table name
    # unique across schemas, so the demo's and a test's datasets could not both be physical.
    return {"table_name": f"{prefix}{table}", "schema": schema, "catalog": None,
            "sql": f"SELECT * FROM {qualified_name(view, prefix)}",
            "main_dttm_col": temporal[0] if temporal else None, "description": f"Trino view {schema}.{table}",
            "default_endpoint": None, "offset": 0, "cache_timeout": None, "params": None, "template_params": None,
            "filter_select_enabled": True, "fetch_values_predicate": None, "extra": None,
            "uuid": asset_uuid("dataset", prefix, view), "database_uuid": asset_uuid("database"), "version": "1.0.0",
            "metrics": [{"metric_name": name, "verbose_name": PRESENTATION[name][0], "metric_type": None,
                         "expression": expression, "description": None, "d3format": PRESENTATION[name][1],
                         "extra": None, "warning_text": None}
                        for name, expression in metrics],
            "columns": [{"column_name": name, "verbose_name": COLUMN_LABELS.get(name),
                         "is_dttm": kind.startswith(DATE_TYPES),
                         "is_active": True, "type": kind.upper(), "groupby": True, "filterable": True,
                         "expression": None, "description": None, "python_date_format": None, "extra": None}
                        for name, kind in columns]}


def metric_label(metric) -> str:
    return metric if isinstance(metric, str) else metric["label"]


def query_object(chart: Chart) -> dict:
    """The query the chart's own frontend plugin builds from its form data (Superset's
    buildQuery of each viz type, field for field), for the API: chart data, CSV export, alerts
    and reports, cache warm-up. Superset's cache key is this object, so a chart warmed through
    the API answers a dashboard's request from the cache only when the two are equal (the
    browser test checks they are). Its filters and WHERE are the chart's; a dashboard's
    filters add to them."""
    params = chart.params
    simple = [f for f in chart.filters if f["expressionType"] == "SIMPLE"]
    wheres = [f"({f['sqlExpression']})" for f in chart.filters if f["expressionType"] == "SQL"]
    metrics = params.get("metrics") or ([params["metric"]] if "metric" in params else [])
    query = {"filters": [{"col": f["subject"], "op": f["operator"], "val": f["comparator"]} for f in simple],
             "extras": {"having": "", "where": " AND ".join(wheres)}, "applied_time_extras": {},
             "annotation_layers": [], "metrics": metrics, "columns": [], "orderby": [],
             "row_limit": params.get("row_limit", 10000), "series_limit": 0, "order_desc": True,
             "url_params": {}, "custom_params": {}, "custom_form_data": {}, "time_offsets": [],
             "post_processing": [], "group_others_when_limit_reached": False}
    if chart.viz == "big_number_total":
        for key in ("orderby", "row_limit", "time_offsets", "post_processing"):
            del query[key]
    elif chart.viz.startswith("echarts_timeseries"):
        axis = {"columnType": "BASE_AXIS", "sqlExpression": params["x_axis"], "label": params["x_axis"],
                "expressionType": "SQL", "isColumnReference": True}
        if "time_grain_sqla" in params:  # a temporal axis, with or without a grain
            axis["timeGrain"] = query["extras"]["time_grain_sqla"] = params["time_grain_sqla"]
        groupby = params.get("groupby") or []
        query.update(columns=[axis, *groupby], series_columns=groupby, orderby=[[metrics[0], False]])
        labels = [metric_label(m) for m in metrics]
        query["post_processing"] = [
            {"operation": "pivot", "options": {"index": [params["x_axis"]], "columns": groupby,
                                               "aggregates": {label: {"operator": "mean"} for label in labels},
                                               "drop_missing_columns": False}},
            # one metric split by a series: the series' values name the columns, not the metric
            *([{"operation": "rename", "options": {"columns": {labels[0]: None}, "level": 0, "inplace": True}}]
              if groupby and len(labels) == 1 else []),
            {"operation": "flatten"}]
    elif chart.viz == "table" and params.get("query_mode") == "raw":
        query.update(columns=params["all_columns"], orderby=[json.loads(order) for order in params.get("order_by_cols", [])])
        del query["metrics"]
    elif chart.viz == "table":
        order_by = params.get("timeseries_limit_metric") or metrics[0]
        query.update(columns=params["groupby"], orderby=[[order_by, False]], series_limit_metric=order_by)
    elif chart.viz == "pie":
        query.update(columns=params["groupby"], orderby=[[metrics[0], False]], post_processing=[
            {"operation": "contribution", "options": {"columns": [metric_label(metrics[0])],
                                                      "rename_columns": [f"{metric_label(metrics[0])}__contribution"]}}])
        del query["time_offsets"]
    return query


def query_context(chart: Chart, form_data: dict) -> str:
    """The saved query context (a JSON string, as Superset stores it); the import fills in the
    dataset's id."""
    return json.dumps({"datasource": {"id": 0, "type": "table"}, "force": False,
                       "queries": [query_object(chart)], "form_data": form_data,
                       "result_format": "json", "result_type": "full"})


def chart_asset(chart: Chart, dashboard: Dashboard, prefix: str) -> dict:
    params = {**chart.params, "viz_type": chart.viz, "adhoc_filters": chart.filters, "extra_form_data": {},
              "dashboards": []}
    return {"slice_name": chart.title, "description": None, "viz_type": chart.viz, "params": params,
            "query_context": query_context(chart, params), "cache_timeout": None, "uuid": asset_uuid("chart", prefix, dashboard.slug, chart.key),
            "version": "1.0.0", "dataset_uuid": asset_uuid("dataset", prefix, chart.view)}


def dashboard_asset(dashboard: Dashboard, prefix: str) -> dict:
    by_key = {chart.key: chart for chart in dashboard.charts}
    position = {"DASHBOARD_VERSION_KEY": "v2",
                "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard.title}}}
    for number, row in enumerate(dashboard.rows):
        row_id = f"ROW-{number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for key in row:
            chart, chart_id = by_key[key], f"CHART-{key}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {"type": "CHART", "id": chart_id, "children": [],
                                  "parents": ["ROOT_ID", "GRID_ID", row_id],
                                  "meta": {"width": chart.width, "height": chart.height, "sliceName": chart.title,
                                           "uuid": asset_uuid("chart", prefix, dashboard.slug, key), "chartId": 0}}
    assert sorted(k for row in dashboard.rows for k in row) == sorted(by_key), "every chart placed once"
    filters = [{"id": "NATIVE_FILTER-day", "name": "Day" if dashboard.campaign_filter else "Time",
                "filterType": "filter_time", "type": "NATIVE_FILTER", "targets": [{}],
                "controlValues": {"enableEmptyFilter": False}, "defaultDataMask": {"extraFormData": {}, "filterState": {}},
                "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "description": ""}]
    if dashboard.campaign_filter:
        filters.append({
            "id": "NATIVE_FILTER-campaign", "name": "Campaign", "filterType": "filter_select", "type": "NATIVE_FILTER",
            "targets": [{"column": {"name": "campaign_id"},
                         "datasetUuid": asset_uuid("dataset", prefix, "campaign_performance_daily")}],
            "controlValues": {"multiSelect": True, "enableEmptyFilter": False, "defaultToFirstItem": False,
                              "inverseSelection": False, "searchAllOptions": False},
            "defaultDataMask": {"extraFormData": {}, "filterState": {}}, "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "description": ""})
    return {"dashboard_title": dashboard.title, "description": dashboard.description, "css": "",
            "slug": f"{prefix}{dashboard.slug}" if prefix else dashboard.slug,
            "uuid": asset_uuid("dashboard", prefix, dashboard.slug), "position": position,
            "metadata": {"native_filter_configuration": filters, "color_scheme": "supersetColors",
                         "refresh_frequency": REFRESH_SECONDS[dashboard.slug], "cross_filters_enabled": False, "expanded_slices": {},
                         "timed_refresh_immune_slices": [], "default_filters": "{}"},
            "version": "1.0.0", "published": True}


def bundle(settings: Settings, prefix: str, columns: dict[str, list[tuple[str, str]]],
           trino: tuple[str, int] | None = None) -> bytes:
    """The import ZIP (Superset's assets bundle): metadata, the database, one dataset per
    view, the charts, the dashboards."""
    files = {"metadata.yaml": {"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"},
             "databases/lakehouse.yaml": database_asset(settings, trino or (settings.trino_host, settings.trino_port))}
    for view in sorted(views_used()):
        files[f"datasets/lakehouse/{prefix}{view}.yaml"] = dataset_asset(view, prefix, columns[view])
    for dashboard in DASHBOARDS:
        for chart in dashboard.charts:
            files[f"charts/{prefix}{dashboard.slug}-{chart.key}.yaml"] = chart_asset(chart, dashboard, prefix)
        files[f"dashboards/{prefix}{dashboard.slug}.yaml"] = dashboard_asset(dashboard, prefix)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            archive.writestr(f"lakehouse/{path}", json.dumps(content, indent=1))
    return buffer.getvalue()


def view_columns(cursor, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Each view's columns and types, as Trino reports them."""
    out = {}
    for view in sorted(views_used()):
        _, schema, table = qualified_name(view, prefix).split(".")
        cursor.execute("SELECT column_name, data_type FROM information_schema.columns "
                       f"WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position")
        out[view] = [(name, kind) for name, kind in cursor.fetchall()]
        if not out[view]:
            raise LookupError(f"Trino view {schema}.{table} not found: apply the views first (`make dashboards`)")
    return out


# --- the REST API


class SupersetClient:
    def __init__(self, settings: Settings) -> None:
        import requests

        self.url = settings.superset_url
        self.session = requests.Session()
        login = self.session.post(f"{self.url}/api/v1/security/login", timeout=30, json={
            "username": settings.superset_admin_user, "password": settings.superset_admin_password,
            "provider": "db", "refresh": False})
        login.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.session.get(f"{self.url}/api/v1/security/csrf_token/", timeout=30)
        csrf.raise_for_status()
        self.session.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": self.url})

    def import_bundle(self, archive: bytes) -> None:
        # The assets import overwrites every asset of the bundle; the dashboard import would
        # overwrite the dashboards only and keep an older import's charts and datasets.
        response = self.session.post(f"{self.url}/api/v1/assets/import/", timeout=120,
                                     files={"bundle": ("lakehouse.zip", archive, "application/zip")},
                                     data={"passwords": "{}"})
        if response.status_code != 200:
            detail = response.text[:2000] if "json" in response.headers.get("Content-Type", "") else "see its log"
            raise RuntimeError(f"Superset refused the dashboards (HTTP {response.status_code}): {detail} "
                               "(local stack: .stack/logs/superset.log)")

    def remove(self, prefix: str) -> dict[str, int]:
        """Delete the dashboards, charts and datasets imported with `prefix` (a test's or a
        benchmark's); the database connection stays. Returns how many of each went."""
        assert prefix, "the unprefixed assets are the demo's: never removed"
        dashboards = self._dashboard_ids(prefix)
        charts = sorted(self._charts_of(dashboards))
        datasets = [row["id"] for row in self._list("dataset", "table_name", prefix)]
        for kind, ids in (("dashboard", dashboards), ("chart", charts), ("dataset", datasets)):
            if ids:
                response = self.session.delete(f"{self.url}/api/v1/{kind}/", timeout=60,
                                               params={"q": f"!({','.join(map(str, ids))})"})
                response.raise_for_status()
        return {"dashboards": len(dashboards), "charts": len(charts), "datasets": len(datasets)}

    def _dashboard_ids(self, prefix: str) -> list[int]:
        slugs = {f"{prefix}{d.slug}" for d in DASHBOARDS}
        return [row["id"] for row in self._list("dashboard", "slug", prefix) if row["slug"] in slugs]

    def charts(self, prefix: str) -> dict[int, str]:
        """{chart id: its title} of the prefix's dashboards."""
        return self._charts_of(self._dashboard_ids(prefix))

    def _charts_of(self, dashboards: list[int]) -> dict[int, str]:
        return {chart["id"]: chart["slice_name"] for dashboard in dashboards
                for chart in self._get(f"dashboard/{dashboard}/charts")["result"]}

    def warm(self, prefix: str) -> int:
        """Run every chart's saved query context past the cache (GET /api/v1/chart/ID/data/,
        forced), one after another: the cache then holds what a dashboard's first open asks
        for (the saved context equals the browser's, see query_object). Returns the charts."""
        charts = self.charts(prefix)
        for number in charts:
            response = self.session.get(f"{self.url}/api/v1/chart/{number}/data/", params={"force": "true"}, timeout=120)
            response.raise_for_status()
        return len(charts)

    def _get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def _list(self, kind: str, column: str, starts_with: str) -> list[dict]:
        query = f"(filters:!((col:{column},opr:sw,value:'{starts_with}')),page_size:100)"
        return self._get(f"{kind}/", q=query)["result"]


def dashboard_urls(settings: Settings, prefix: str = "") -> dict[str, str]:
    return {d.title: f"{settings.superset_url}/superset/dashboard/{prefix}{d.slug}/" for d in DASHBOARDS}


def apply(settings: Settings, prefix: str, cursor, warm_cache: bool = True) -> dict[str, str]:
    """Import the dashboards over the prefix's tables and (`warm_cache`) warm Superset's cache for them."""
    client = SupersetClient(settings)
    client.import_bundle(bundle(settings, prefix, view_columns(cursor, prefix), trino_address(settings)))
    if warm_cache:
        client.warm(prefix)
    return dashboard_urls(settings, prefix)


def warm(settings: Settings, prefix: str) -> int:
    return SupersetClient(settings).warm(prefix)


def remove(settings: Settings, prefix: str) -> dict[str, int]:
    return SupersetClient(settings).remove(prefix)


def main(argv: list[str] | None = None) -> int:
    """Import the dashboards into a running Superset (`make bi`); skipped when none answers."""
    import argparse

    import trino

    from stack.preflight import http_status

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m dashboards.superset_bootstrap", description=main.__doc__)
    parser.add_argument("--table-prefix", default=settings.table_namespace_prefix)
    args = parser.parse_args(argv)
    if http_status(f"{settings.superset_url}/health") != 200:
        print(f"superset: skipped — not reachable at {settings.superset_url} (start it with `make bi`)")
        return 0
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    try:
        urls = apply(settings, args.table_prefix, connection.cursor())
    finally:
        connection.close()
    for title, url in urls.items():
        print(f"superset: {title}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
