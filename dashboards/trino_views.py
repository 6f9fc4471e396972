"""The Trino views every dashboard reads, from dashboards/trino/*.sql, rendered for a table
namespace prefix and applied idempotently (CREATE OR REPLACE VIEW), in dependency order.

A .sql file holds one SELECT (comments allowed) with {placeholders}: table names, and for
a template used by several views, the view's own parameters (see VIEWS)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conf.measures import ratios_sql, sums_sql
from conf.settings import CATALOG_NAME
from conf.tables import Tables

VIEW_DIR = Path(__file__).resolve().parent / "trino"


@dataclass(frozen=True)
class View:
    name: str
    namespace: str  # "gold" for what BI reads, "ops" for pipeline health
    template: str  # file stem under dashboards/trino/
    parameters: dict[str, str] = field(default_factory=dict)


def _performance(dimensions: str, name: str) -> View:
    return View(name, "gold", "performance_daily", {"dimensions": dimensions})


# Dependency order: a view comes after the views it reads.
VIEWS: tuple[View, ...] = (
    _performance("campaign_id", "campaign_performance_daily"),
    _performance("campaign_id, creative_id", "creative_performance_daily"),
    _performance("campaign_id, geo_country", "country_performance_daily"),
    _performance("campaign_id, platform", "platform_performance_daily"),
    View("impressions_with_campaign_version", "gold", "impressions_with_campaign_version"),
    View("campaign_budget_pacing", "gold", "campaign_budget_pacing"),
    View("attribution_dispositions", "gold", "attribution_dispositions"),
    View("campaign_roas_by_model", "gold", "campaign_roas_by_model"),
    View("audit_reasons_hourly", "gold", "audit_reasons_hourly"),
    View("pipeline_health", "ops", "pipeline_health"),
    View("stream_batches", "ops", "stream_batches"),
    View("stream_partition_lag", "ops", "stream_partition_lag"),
    View("kafka_keys_hourly", "ops", "kafka_keys_hourly"),
)
BY_NAME = {view.name: view for view in VIEWS}


def partitions_table(table: str) -> str:
    """Trino's metadata table of partitions (with per-column min/max) of an Iceberg table."""
    qualifier, name = table.rsplit(".", 1)
    return f'{qualifier}."{name}$partitions"'


def placeholders(prefix: str = "") -> dict[str, str]:
    tables = Tables(prefix)
    return {
        "gold": tables.gold,
        "bronze": tables.bronze,
        "gold_partitions": partitions_table(tables.gold),
        "bronze_partitions": partitions_table(tables.bronze),
        "performance_rollup": tables.performance_rollup,
        "disposition_rollup": tables.disposition_rollup,
        "audit": tables.audit,
        "attribution_models": tables.attribution_models,
        "stream_progress": tables.stream_progress,
        "offset_gaps": tables.offset_gaps,
        "gold_namespace": f"{CATALOG_NAME}.{prefix}gold",
        "ops_namespace": f"{CATALOG_NAME}.{prefix}ops",
        "dim_campaigns": tables.dim_campaigns,
        "sums": sums_sql(),
        "ratios": ratios_sql(),
    }


def qualify(sql: str, prefix: str = "") -> str:
    """Dashboard SQL names tables and views with the default namespaces (lakehouse.gold.x,
    as a user sees them); point it at prefixed namespaces (TABLE_NAMESPACE_PREFIX)."""
    if not prefix:
        return sql
    return re.sub(rf"\b{CATALOG_NAME}\.(gold|ops|bronze|dims|conf)\.", rf"{CATALOG_NAME}.{prefix}\1.", sql)


def qualified_name(name: str, prefix: str = "") -> str:
    view = BY_NAME[name]
    return f"{CATALOG_NAME}.{prefix}{view.namespace}.{view.name}"


def select_sql(name: str, prefix: str = "") -> str:
    """The view's SELECT, rendered (what the view runs)."""
    view = BY_NAME[name]
    text = (VIEW_DIR / f"{view.template}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.format(**placeholders(prefix), **view.parameters).strip().rstrip(";")


def render(name: str, prefix: str = "") -> str:
    return f"CREATE OR REPLACE VIEW {qualified_name(name, prefix)} AS\n{select_sql(name, prefix)}"


def view_names() -> list[str]:
    return [view.name for view in VIEWS]


def apply_views(cursor, prefix: str = "", names: list[str] | None = None) -> list[str]:
    applied = []
    for name in names or view_names():
        cursor.execute(render(name, prefix))
        cursor.fetchall()
        applied.append(name)
    return applied
