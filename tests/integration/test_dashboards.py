"""The serving layer on the local stack, after a generator + engine + dims + rollups run with
known totals (the oracle): every Trino view, every Metabase card's SQL (filters expanded as
Metabase does) and every Grafana panel's SQL (macros expanded as the trino-datasource
plugin does) runs on the real Trino and returns the expected numbers; over empty tables
they return NULLs, not errors; the path-analysis notebook runs headless and its totals
match Gold. (Metabase and Grafana servers cannot run here: their specs are checked in
tests/unit/test_dashboards_spec.py.)"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from conf.tables import Tables, ensure_tables
from dashboards import grafana_bootstrap, metabase_bootstrap
from dashboards.trino_views import qualified_name, qualify, view_names

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("served")]  # one worker computes `served`


def day_of(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc).date().isoformat()


def fetch(cursor, sql: str) -> list[dict]:
    cursor.execute(sql)
    rows = cursor.fetchall()
    return [dict(zip([c[0] for c in cursor.description], row)) for row in rows]


def impressions(expected) -> list[dict]:
    return [row for row in expected.gold.values() if row["impression_time"] is not None]


def close(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                         abs_tol=1e-9))


# --- `make dashboards`

def test_make_dashboards_applies_every_view_and_says_why_bi_is_skipped(served, capsys):
    from dashboards.apply import main as apply_dashboards

    assert apply_dashboards(["--table-prefix", served["prefix"]]) == 0
    printed = capsys.readouterr().out
    for name in view_names():
        assert f"trino: view {qualified_name(name, served['prefix'])} applied" in printed
    assert "metabase: skipped — not reachable at" in printed and "grafana: skipped — not reachable at" in printed


# --- the views

def test_campaign_performance_daily_equals_the_oracle(applied, trino_cursor):
    groups = defaultdict(list)
    for row in impressions(applied["expected"]):
        groups[(day_of(row["impression_time"]), row["campaign_id"])].append(row)
    got = {(str(r["day"]), r["campaign_id"]): r for r in fetch(
        trino_cursor, f"SELECT * FROM {qualified_name('campaign_performance_daily', applied['prefix'])}")}
    assert set(got) == set(groups) and len({day for day, _ in groups}) >= 2
    for key, rows in groups.items():
        view = got[key]
        clicks, conversions = sum(r["is_clicked"] for r in rows), sum(r["is_converted"] for r in rows)
        cost, revenue = sum(r["cost"] for r in rows), sum(r["revenue"] for r in rows)
        lags = [(r["conversion_time"] - r["impression_time"]) / 1e6 for r in rows if r["is_converted"]]
        assert (view["impressions"], view["clicks"], view["conversions"]) == (len(rows), clicks, conversions), key
        assert close(view["cost"], cost) and close(view["revenue"], revenue)
        assert close(view["roas"], revenue / cost if cost else None)
        assert close(view["ctr"], clicks / len(rows))
        assert close(view["cvr"], conversions / clicks if clicks else None)
        assert close(view["avg_attribution_lag_seconds"], sum(lags) / len(lags) if lags else None)
        assert close(view["revenue_out_of_window"], sum(r["revenue_out_of_window"] for r in rows))
        assert view["ineligible_impressions"] == sum(not r["eligible"] for r in rows)


@pytest.mark.parametrize("view,column", [("creative_performance_daily", "creative_id"),
                                         ("country_performance_daily", "geo_country"),
                                         ("platform_performance_daily", "platform")])
def test_breakdowns_add_up_per_dimension(applied, trino_cursor, view, column):
    expected = defaultdict(lambda: [0, 0, 0, 0.0])
    for row in impressions(applied["expected"]):
        totals = expected[row[column]]
        totals[0] += 1
        totals[1] += row["is_clicked"]
        totals[2] += row["is_converted"]
        totals[3] += row["revenue"]
    got = fetch(trino_cursor, f"SELECT {column} AS value, sum(impressions) AS i, sum(clicks) AS c, "
                              f"sum(conversions) AS v, sum(revenue) AS r "
                              f"FROM {qualified_name(view, applied['prefix'])} GROUP BY 1")
    assert {r["value"]: (r["i"], r["c"], r["v"]) for r in got} == {k: tuple(v[:3]) for k, v in expected.items()}
    assert all(close(r["r"], expected[r["value"]][3]) for r in got)


def test_budget_pacing_uses_the_budget_in_force_at_impression_time(applied, trino_cursor):
    series = applied["series"]

    def version_at(campaign_id: str, micros: int) -> dict:
        at = datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)
        rows = [rows for as_of, rows in series if as_of <= at][-1]
        return next(r for r in rows if r["campaign_id"] == campaign_id)

    days = defaultdict(list)
    for row in impressions(applied["expected"]):
        days[(day_of(row["impression_time"]), row["campaign_id"])].append(row)
    got = {(str(r["day"]), r["campaign_id"]): r for r in fetch(
        trino_cursor, f"SELECT * FROM {qualified_name('campaign_budget_pacing', applied['prefix'])}")}
    assert set(got) == set(days)
    cumulative = defaultdict(float)
    budgets_seen = set()
    for key in sorted(days):
        rows, view = days[key], got[key]
        last = max(rows, key=lambda r: r["impression_time"])
        version = version_at(key[1], last["impression_time"])
        spend = sum(r["cost"] for r in rows)
        cumulative[key[1]] += spend
        assert (view["budget_type"], view["budget_amount"]) == (version["budget_type"], version["budget_amount"])
        assert close(view["spend"], spend) and close(view["cumulative_spend"], cumulative[key[1]])
        basis = spend if version["budget_type"] == "DAILY" else cumulative[key[1]]
        assert close(view["pacing"], basis / version["budget_amount"])
        budgets_seen.add((key[1], view["budget_amount"]))
    assert len(budgets_seen) > len({c for _, c in days})  # budgets changed between the two days


def test_stream_views_give_throughput_lag_and_latency(applied, trino_cursor):
    records, prefix = applied["records"], applied["prefix"]
    batches = fetch(trino_cursor, f"SELECT * FROM {qualified_name('stream_batches', prefix)} "
                                  "WHERE num_input_rows > 0 ORDER BY batch_id")
    assert len(batches) >= 3 and sum(b["num_input_rows"] for b in batches) == len(records)
    assert batches[-1]["kafka_lag"] == 0 and batches[0]["kafka_lag"] == len(records) - batches[0]["num_input_rows"]
    assert all(b["end_to_end_latency_seconds"] > 0 and b["batch_duration_seconds"] > 0 for b in batches)
    lag = fetch(trino_cursor, f"SELECT kafka_partition, end_offset, kafka_lag FROM "
                              f"{qualified_name('stream_partition_lag', prefix)} "
                              f"WHERE batch_id = {batches[-1]['batch_id']}")
    per_partition = Counter(r["partition"] for r in records)
    assert {r["kafka_partition"]: (r["end_offset"], r["kafka_lag"]) for r in lag} == {
        p: (count, 0) for p, count in per_partition.items()}


def test_pipeline_health_is_one_row_of_current_figures(applied, trino_cursor):
    (health,) = fetch(trino_cursor, f"SELECT * FROM {qualified_name('pipeline_health', applied['prefix'])}")
    latest_event = max(r["impression_time"] for r in impressions(applied["expected"]))
    assert health["kafka_lag"] == 0 and health["processed_rows_per_second"] > 0
    assert health["bronze_max_event_time"].timestamp() * 1e6 >= latest_event
    now = datetime.now(timezone.utc).timestamp()
    assert math.isclose(health["end_to_end_latency_seconds"], now - health["bronze_max_event_time"].timestamp(),
                        abs_tol=120)
    assert 0 <= health["gold_freshness_seconds"] < 3600  # Gold was written minutes ago


def test_audit_reasons_hourly_counts_audit_and_rule_dispositions(applied, trino_cursor):
    expected = applied["expected"]
    arrival = {(r["partition"], r["offset"]): r["arrival_ms"] for r in applied["records"]}
    want = Counter()
    for coordinates, reason in expected.audit.items():
        want[("audit", reason, arrival[coordinates] // 3_600_000)] += 1
    for coordinates, disposition in expected.dispositions.items():
        if disposition not in ("ATTRIBUTED", "CLICK", "IMPRESSION"):
            want[("gold", disposition, arrival[coordinates] // 3_600_000)] += 1
    got = fetch(trino_cursor, f"SELECT source, reason, to_unixtime(hour) AS hour, events "
                              f"FROM {qualified_name('audit_reasons_hourly', applied['prefix'])}")
    assert Counter({(r["source"], r["reason"], int(r["hour"]) // 3600): r["events"] for r in got}) == want
    assert any(reason == "CLICK_BEFORE_IMPRESSION" for _, reason, _ in want)


# --- Metabase cards

def run_card(cursor, card, values: dict, prefix: str) -> list[dict]:
    spec = metabase_bootstrap.load_spec()
    return fetch(cursor, qualify(metabase_bootstrap.expand(card.sql, values, spec["dashboard"]["parameters"]), prefix))


def test_every_metabase_card_runs_unfiltered_and_filtered(applied, trino_cursor):
    spec = metabase_bootstrap.load_spec()
    rows = impressions(applied["expected"])
    campaign, day = rows[0]["campaign_id"], day_of(rows[0]["impression_time"])
    for card in spec["dashboard"]["cards"]:
        assert run_card(trino_cursor, card, {}, applied["prefix"]), card.key
        assert run_card(trino_cursor, card, {"start_date": day, "end_date": day, "campaign": campaign},
                        applied["prefix"]), card.key


def test_metabase_roas_cards_equal_the_oracle(applied, trino_cursor):
    spec = metabase_bootstrap.load_spec()
    cards = {card.key: card for card in spec["dashboard"]["cards"]}
    rows = impressions(applied["expected"])
    day = day_of(rows[0]["impression_time"])
    in_day = [r for r in rows if day_of(r["impression_time"]) == day]
    by_campaign = defaultdict(list)
    for row in in_day:
        by_campaign[row["campaign_id"]].append(row)
    got = run_card(trino_cursor, cards["by_campaign"], {"start_date": day, "end_date": day}, applied["prefix"])
    assert {r["campaign_id"]: r["impressions"] for r in got} == {c: len(v) for c, v in by_campaign.items()}
    for r in got:
        cost = sum(x["cost"] for x in by_campaign[r["campaign_id"]])
        revenue = sum(x["revenue"] for x in by_campaign[r["campaign_id"]])
        assert close(r["roas"], revenue / cost)
    assert [r["revenue"] for r in got] == sorted((r["revenue"] for r in got), reverse=True)
    (totals,) = run_card(trino_cursor, cards["totals"], {}, applied["prefix"])
    assert totals["impressions"] == len(rows)
    assert close(totals["roas"], sum(r["revenue"] for r in rows) / sum(r["cost"] for r in rows))
    assert close(totals["cvr"], sum(r["is_converted"] for r in rows) / sum(r["is_clicked"] for r in rows))
    assert len(run_card(trino_cursor, cards["top_creatives"], {}, applied["prefix"])) == 20


# --- Grafana panels

def test_every_grafana_panel_runs_with_its_macros_expanded(applied, trino_cursor):
    """Over a time range that holds the data, every panel returns rows; the fraud stat
    equals the oracle's count of clicks before their impression."""
    records = applied["records"]
    arrivals = [r["arrival_ms"] for r in records]
    time_from = datetime.fromtimestamp(min(arrivals) / 1000, tz=timezone.utc) - timedelta(hours=1)
    time_to = datetime.now(timezone.utc) + timedelta(minutes=5)  # batches run in wall-clock time
    fraud = sum(d == "CLICK_BEFORE_IMPRESSION" for d in applied["expected"].dispositions.values())
    for title, sql in grafana_bootstrap.panel_queries(grafana_bootstrap.load_dashboard()):
        expanded = qualify(grafana_bootstrap.expand_macros(sql, time_from, time_to), applied["prefix"])
        assert "$__" not in expanded
        rows = fetch(trino_cursor, expanded)
        assert rows, title
        if title.startswith("Click-before-impression"):
            assert rows[0]["events"] == fraud > 0


def test_grafana_time_filter_excludes_what_is_outside_the_range(applied, trino_cursor):
    """The expanded $__timeFilter compares UTC with UTC: a range ending just before the
    first arrival hour sees no audit rows, one covering it sees them all."""
    first_hour = min(r["arrival_ms"] for r in applied["records"]) // 3_600_000 * 3600
    sql = ("SELECT coalesce(sum(events), 0) AS events FROM lakehouse.gold.audit_reasons_hourly "
           "WHERE $__timeFilter(hour)")
    before = datetime.fromtimestamp(first_hour - 1, tz=timezone.utc)
    (none,) = fetch(trino_cursor, qualify(grafana_bootstrap.expand_macros(sql, before - timedelta(days=1), before),
                                          applied["prefix"]))
    (every,) = fetch(trino_cursor, qualify(grafana_bootstrap.expand_macros(
        sql, before, datetime.now(timezone.utc)), applied["prefix"]))
    assert none["events"] == 0
    assert every["events"] == len(applied["expected"].audit) + sum(
        d not in ("ATTRIBUTED", "CLICK", "IMPRESSION") for d in applied["expected"].dispositions.values())


# --- empty tables

def test_views_cards_and_panels_over_empty_tables_give_nulls_not_errors(stack, spark, trino_cursor):
    from dashboards.trino_views import apply_views
    from dims.dimensions import COLUMN_TYPES, campaigns
    from dims.scd2 import ddl
    from tests.attribution_helpers import drop_namespaces

    tables = Tables(f"empty{os.getpid()}_")
    try:
        ensure_tables(spark, tables)
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lakehouse.{tables.prefix}dims")
        spark.sql(ddl(campaigns(tables.prefix), COLUMN_TYPES))
        apply_views(trino_cursor, tables.prefix)
        for name in view_names():
            rows = fetch(trino_cursor, f"SELECT * FROM {qualified_name(name, tables.prefix)}")
            if name == "pipeline_health":
                assert len(rows) == 1 and rows[0]["kafka_lag"] is None and rows[0]["gold_freshness_seconds"] is None
            else:
                assert rows == [], name
        spec = metabase_bootstrap.load_spec()
        for card in spec["dashboard"]["cards"]:
            run_card(trino_cursor, card, {}, tables.prefix)  # no error
        (totals,) = run_card(trino_cursor, next(c for c in spec["dashboard"]["cards"] if c.key == "totals"), {},
                             tables.prefix)
        assert totals["roas"] is None and totals["ctr"] is None
        now = datetime.now(timezone.utc)
        for title, sql in grafana_bootstrap.panel_queries(grafana_bootstrap.load_dashboard()):
            fetch(trino_cursor, qualify(grafana_bootstrap.expand_macros(sql, now - timedelta(hours=6), now),
                                        tables.prefix))
    finally:
        drop_namespaces(spark, tables)


# --- the notebook

def test_path_analysis_notebook_runs_headless_and_matches_gold(applied):
    from dashboards import notebook as path_analysis

    notebook = path_analysis.execute(applied["prefix"])
    outputs = path_analysis.outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    assert set(path_analysis.charts(notebook)) == {"effective-frequency", "unique-reach", "attribution-models-over-the-same-paths"}
    line = next(text for o in outputs if o.output_type == "stream"
                for text in o.text.splitlines() if text.startswith("SUMMARY "))
    summary = json.loads(line.removeprefix("SUMMARY "))
    rows = impressions(applied["expected"])
    converted = [r for r in applied["expected"].gold.values() if r["is_converted"]]
    assert summary["conversions"] == len(converted) > 0
    for model, total in summary["revenue"].items():
        assert math.isclose(total, sum(r["revenue"] for r in converted), rel_tol=1e-6), model
    gold_by_campaign = defaultdict(float)
    for row in converted:
        gold_by_campaign[row["campaign_id"]] += row["revenue"]
    assert {c: round(v, 6) for c, v in summary["gold_revenue_by_campaign"].items() if v} == pytest.approx(
        {c: round(v, 6) for c, v in gold_by_campaign.items()})
    assert summary["impressions"] == len(rows)
    assert summary["unique_reach"] == len({r["user_id"] for r in rows})
