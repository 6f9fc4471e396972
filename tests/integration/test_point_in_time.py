"""The point-in-time join of Gold with dims.dim_campaigns, through the Trino view
dashboards/trino/impressions_with_campaign_version.sql, over the dashboards' scenario
(impressions over ~33 h, campaign budgets changing every 12 h): every impression finds
exactly one campaign version, the one in force at its impression time."""

from __future__ import annotations

import pytest

from dashboards.trino_views import apply_views

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("served")]  # one worker computes `served`


@pytest.fixture
def joined(served, trino_cursor):
    apply_views(trino_cursor, served["prefix"], ["impressions_with_campaign_version"])
    impressions = sum(row["impression_time"] is not None for row in served["expected"].gold.values())
    return served["prefix"], impressions


def test_every_impression_finds_exactly_one_campaign_version(joined, trino_cursor):
    prefix, impressions = joined
    trino_cursor.execute(
        f"SELECT count(*), count(DISTINCT impression_id), count_if(campaign_key IS NULL) "
        f"FROM lakehouse.{prefix}gold.impressions_with_campaign_version")
    assert tuple(trino_cursor.fetchone()) == (impressions, impressions, 0)


def test_the_version_is_the_one_in_force_at_impression_time(joined, trino_cursor):
    prefix, impressions = joined
    trino_cursor.execute(
        f"SELECT count(*), count_if(v.budget_amount = d.budget_amount), count(DISTINCT v.campaign_key) "
        f"FROM lakehouse.{prefix}gold.impressions_with_campaign_version v "
        f"JOIN lakehouse.{prefix}dims.dim_campaigns d ON d.campaign_key = v.campaign_key "
        f"WHERE v.impression_time >= d.start_ts AND v.impression_time < d.end_ts")
    rows, same_budget, versions = trino_cursor.fetchone()
    assert rows == same_budget == impressions
    trino_cursor.execute(f"SELECT count(DISTINCT campaign_id) FROM lakehouse.{prefix}dims.dim_campaigns")
    assert versions > trino_cursor.fetchone()[0]  # impressions spread over several versions per campaign
