"""Campaign snapshots for the SCD Type 2 dimension job (dims/campaign_scd2_job.py).

    python -m producers.campaign_feed --snapshots 5 --interval-hours 24 --output-dir .stack/landing/campaigns

Each snapshot is one JSON-lines file `campaigns_<as-of>.jsonl` holding every campaign
known at that instant (campaign_id, name, advertiser, budget_type, budget_amount,
status, as_of). Between snapshots budgets and statuses change, campaigns launch, some
drop out of a snapshot and come back, and a few attributes go missing (null) — the
cases an SCD2 job must get right. The campaign ids are the generator's
(producers/catalog.py); the same --seed gives the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from producers.catalog import CAMPAIGN_STATUSES, build_world


@dataclass(frozen=True)
class FeedConfig:
    budget_change_rate: float = 0.2
    status_change_rate: float = 0.1
    absent_rate: float = 0.02  # left out of one snapshot (a full snapshot: it is closed, then reopened)
    null_rate: float = 0.01  # advertiser or budget_type missing in this snapshot
    launched_share: float = 0.8  # share of campaigns live in the first snapshot; the rest launch later


FEED_EPOCH = datetime(2026, 1, 5, tzinfo=timezone.utc)  # the generator's default --start too


def snapshots(seed: int, count: int, start: datetime, interval: timedelta, campaigns: int,
              config: FeedConfig = FeedConfig(), launch_over: int | None = None) -> list[tuple[datetime, list[dict]]]:
    """The full series, as (as_of, rows) in time order; a pure function of its arguments.
    The campaigns not live at first launch over the first `launch_over` snapshots (default:
    all of them); with it fixed, snapshot i does not depend on `count`."""
    world = build_world(seed, campaigns=campaigns)
    rng = random.Random(f"feed-{seed}")
    state = {
        c.campaign_id: {"campaign_id": c.campaign_id, "name": c.name, "advertiser": c.advertiser,
                        "budget_type": c.budget_type, "budget_amount": c.budget_amount, "status": "ACTIVE"}
        for c in world.campaigns
    }
    ids = list(state)
    first_live = max(1, int(len(ids) * config.launched_share))
    series = []
    for index in range(count):
        as_of = start + index * interval
        launched = (len(ids) - first_live) * min(index, (launch_over or count) - 1) // max((launch_over or count) - 1, 1)
        live = ids[: first_live + launched]
        rows = []
        for campaign_id in live:
            current = state[campaign_id]
            if index > 0 and rng.random() < config.budget_change_rate:
                current["budget_amount"] = float(max(50, round(current["budget_amount"] * rng.uniform(0.5, 2.0) / 50) * 50))
            if index > 0 and rng.random() < config.status_change_rate:
                current["status"] = rng.choice([s for s in CAMPAIGN_STATUSES if s != current["status"]])
            if index > 0 and rng.random() < config.absent_rate:
                continue
            row = dict(current)
            if rng.random() < config.null_rate:
                row[rng.choice(["advertiser", "budget_type"])] = None
            rows.append({**row, "as_of": as_of.isoformat().replace("+00:00", "Z")})
        series.append((as_of, rows))
    return series


def daily_snapshots(seed: int, campaigns: int, since: datetime, through: datetime) -> list[tuple[datetime, list[dict]]]:
    """One snapshot per UTC midnight from `since` through `through`, cut from one daily series
    that starts at FEED_EPOCH: a day's snapshot is the same whichever run writes it."""
    days = max((through - FEED_EPOCH) // timedelta(days=1) + 1, 1)
    series = snapshots(seed, days, FEED_EPOCH, timedelta(days=1), campaigns, launch_over=5)
    return [(as_of, rows) for as_of, rows in series if as_of >= since - timedelta(days=1)]


def user_snapshots(seed: int, count: int, start: datetime, interval: timedelta, users: int,
                   move_rate: float = 0.01, platform_switch_rate: float = 0.03) -> list[tuple[datetime, list[dict]]]:
    """The generator's users over time: a few move country or switch platform per snapshot."""
    from producers.catalog import COUNTRY_WEIGHTS, PLATFORM_WEIGHTS

    world = build_world(seed, users=users)
    rng = random.Random(f"users-{seed}")
    state = {u.user_id: {"user_id": u.user_id, "country": u.country, "platform": u.platform,
                         "age_band": u.age_band, "gender": u.gender} for u in world.users}
    series = []
    for index in range(count):
        as_of = start + index * interval
        for row in state.values():
            if index and rng.random() < move_rate:
                row["country"] = rng.choice(list(COUNTRY_WEIGHTS))
            if index and rng.random() < platform_switch_rate:
                row["platform"] = rng.choice(list(PLATFORM_WEIGHTS))
        series.append((as_of, [{**row, "as_of": as_of.isoformat().replace("+00:00", "Z")} for row in state.values()]))
    return series


def snapshot_path(directory: Path, as_of: datetime, kind: str = "campaigns") -> Path:
    return directory / f"{kind}_{as_of.strftime('%Y%m%dT%H%M%SZ')}.jsonl"


def write_snapshots(directory: Path, series: list[tuple[datetime, list[dict]]], kind: str = "campaigns") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for as_of, rows in series:
        path = snapshot_path(directory, as_of, kind)
        path.write_text("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producers.campaign_feed", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=5)
    parser.add_argument("--interval-hours", type=float, default=24.0)
    parser.add_argument("--start", default=FEED_EPOCH.isoformat().replace("+00:00", "Z"), help="as-of time of the first snapshot")
    parser.add_argument("--campaigns", type=int, default=50, help="must match the generator's --campaigns")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default=str(landing_dir("campaigns")))
    parser.add_argument("--users", type=int, default=0, metavar="N",
                        help="also write user snapshots of the generator's first N users (for dims.dim_users)")
    parser.add_argument("--users-output-dir", default=str(landing_dir("users")))
    args = parser.parse_args(argv)

    start = datetime.fromisoformat(args.start.replace("Z", "+00:00")).astimezone(timezone.utc)
    interval = timedelta(hours=args.interval_hours)
    series = snapshots(args.seed, args.snapshots, start, interval, args.campaigns)
    for path, (_, rows) in zip(write_snapshots(Path(args.output_dir), series), series):
        print(f"{path}  {len(rows)} campaigns")
    if args.users:
        user_series = user_snapshots(args.seed, args.snapshots, start, interval, args.users)
        for path, (_, rows) in zip(write_snapshots(Path(args.users_output_dir), user_series, "users"), user_series):
            print(f"{path}  {len(rows)} users")
    return 0


def landing_dir(kind: str) -> Path:
    """Where the feed writes and the dims job reads: RUNTIME_DIR/landing/<kind>."""
    from conf.settings import get_settings

    return Path(get_settings().runtime_dir) / "landing" / kind


if __name__ == "__main__":
    sys.exit(main())
