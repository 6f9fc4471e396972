"""The campaign feed: deterministic snapshots that exercise SCD2, with the generator's ids."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from producers.ad_traffic_generator import main as generate
from producers.campaign_feed import main, snapshots

START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def test_same_seed_same_files(tmp_path):
    for name in ("a", "b"):
        assert main(["--snapshots", "4", "--seed", "3", "--output-dir", str(tmp_path / name)]) == 0
    files_a = sorted((tmp_path / "a").iterdir())
    files_b = sorted((tmp_path / "b").iterdir())
    assert [f.name for f in files_a] == [f.name for f in files_b] and len(files_a) == 4
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(files_a, files_b))
    first = [json.loads(line) for line in files_a[0].read_text().splitlines()]
    assert {"campaign_id", "name", "advertiser", "budget_type", "budget_amount", "status", "as_of"} <= set(first[0])
    assert first[0]["as_of"] == "2026-01-05T00:00:00Z"


def test_snapshots_change_budgets_and_statuses_and_launch_campaigns():
    series = snapshots(seed=1, count=20, start=START, interval=timedelta(days=1), campaigns=50)
    as_ofs = [as_of for as_of, _ in series]
    assert as_ofs == sorted(as_ofs) and as_ofs[1] - as_ofs[0] == timedelta(days=1)
    history: dict[str, list[dict]] = {}
    for _, rows in series:
        assert len({r["campaign_id"] for r in rows}) == len(rows), "duplicate campaign in a snapshot"
        for row in rows:
            history.setdefault(row["campaign_id"], []).append(row)
    budgets = sum(len({r["budget_amount"] for r in rows}) > 1 for rows in history.values())
    statuses = sum(len({r["status"] for r in rows}) > 1 for rows in history.values())
    assert budgets > 20 and statuses > 20
    assert len(series[0][1]) < len(history) == 50  # some campaigns launch later
    assert any(r["advertiser"] is None or r["budget_type"] is None for _, rows in series for r in rows)
    present = [{r["campaign_id"] for r in rows} for _, rows in series]
    assert any(cid in present[i - 1] and cid not in present[i] and cid in present[i + 1]
               for i in range(1, len(present) - 1) for cid in present[i - 1])


def test_feed_uses_the_generators_campaign_ids(tmp_path):
    output = tmp_path / "events.jsonl"
    generate(["--dry-run", "--quiet", "--count", "20000", "--seed", "4", "--output", str(output)])
    event_campaigns = {json.loads(json.loads(line)["value"])["campaign_id"] for line in output.read_text().splitlines()}
    feed_campaigns = {r["campaign_id"] for _, rows in snapshots(4, 3, START, timedelta(days=1), 50) for r in rows}
    assert event_campaigns <= feed_campaigns
