"""The point-in-time join of Gold with dims.dim_campaigns, through the Trino view
dashboards/trino/impressions_with_campaign_version.sql: every impression finds exactly
one campaign version, the one in force at its impression time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conf.tables import Tables
from dashboards.trino_views import apply_views
from producers.ad_traffic_generator import main as generate
from producers.campaign_feed import FeedConfig, snapshots, write_snapshots

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("served")]  # one worker computes `served`
START = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def joined(stack, spark, settings, tmp_path_factory):
    from dims.campaign_scd2_job import run as run_dims
    from dims.dimensions import campaigns
    from jobs.attribution_streaming_job import parse_args, run as run_attribution
    from tests.attribution_helpers import drop_namespaces

    prefix = f"pit{uuid.uuid4().hex[:8]}_"
    topic = f"pit_{uuid.uuid4().hex[:8]}"
    work = tmp_path_factory.mktemp("pit")
    # 8,000 impressions over 160 s of event time; campaign versions change every 40 s.
    generate(["--count", "8000", "--seed", "31", "--topic", topic, "--start", START.isoformat(), "--quiet",
              "--no-drain"])
    run_attribution(parse_args(["--trigger", "available-now", "--topic", topic, "--table-prefix", prefix,
                                "--checkpoint", str(work / "checkpoint")]))
    series = snapshots(31, 5, START, timedelta(seconds=40), 50,
                       FeedConfig(budget_change_rate=0.5, absent_rate=0.0, null_rate=0.0, launched_share=1.0))
    run_dims(spark, campaigns(prefix), write_snapshots(work / "landing", series))
    yield prefix
    drop_namespaces(spark, Tables(prefix))


def test_every_impression_finds_exactly_one_campaign_version(joined, trino_cursor):
    apply_views(trino_cursor, joined, ["impressions_with_campaign_version"])
    trino_cursor.execute(
        f"SELECT count(*), count(DISTINCT impression_id), count_if(campaign_key IS NULL) "
        f"FROM lakehouse.{joined}gold.impressions_with_campaign_version")
    rows, impressions, unmatched = trino_cursor.fetchone()
    trino_cursor.execute(f"SELECT count(*) FROM lakehouse.{joined}gold.ad_performance_state "
                         "WHERE impression_time IS NOT NULL")
    assert rows == impressions == trino_cursor.fetchone()[0] > 7000
    assert unmatched == 0


def test_the_version_is_the_one_in_force_at_impression_time(joined, trino_cursor):
    trino_cursor.execute(
        f"SELECT count(*), count_if(v.budget_amount = d.budget_amount), count(DISTINCT v.campaign_key) "
        f"FROM lakehouse.{joined}gold.impressions_with_campaign_version v "
        f"JOIN lakehouse.{joined}dims.dim_campaigns d ON d.campaign_key = v.campaign_key "
        f"WHERE v.impression_time >= d.start_ts AND v.impression_time < d.end_ts")
    rows, same_budget, versions = trino_cursor.fetchone()
    assert rows == same_budget > 7000
    trino_cursor.execute(f"SELECT count(DISTINCT campaign_id) FROM lakehouse.{joined}dims.dim_campaigns")
    assert versions > trino_cursor.fetchone()[0]  # impressions spread over several versions per campaign
