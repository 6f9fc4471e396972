"""The advertising world the generator and the campaign feed share: advertisers,
campaigns, creatives and users, made with faker and drawn from skewed distributions.

Everything is a pure function of the seed, so `ad_traffic_generator` and `campaign_feed`
given the same seed agree on every campaign_id.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from faker import Faker

# Share of traffic per country and platform: a few markets carry most of the volume.
COUNTRY_WEIGHTS = {
    "US": 38, "GB": 9, "DE": 8, "IN": 8, "BR": 6, "FR": 6, "JP": 5, "CA": 4,
    "MX": 3, "ES": 3, "IT": 3, "AU": 2, "NL": 2, "SE": 1, "PL": 1, "KR": 1,
}
PLATFORM_WEIGHTS = {"IOS": 42, "ANDROID": 38, "WEB": 15, "CTV": 5}
BUDGET_TYPES = ("DAILY", "LIFETIME")
CAMPAIGN_STATUSES = ("ACTIVE", "PAUSED", "ENDED")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    advertiser: str
    budget_type: str
    budget_amount: float
    creative_ids: tuple[str, ...]
    base_bid: float  # typical price paid per impression (a CPM of $30-$150), in currency units


@dataclass(frozen=True)
class User:
    user_id: str
    country: str
    platform: str
    age_band: str
    gender: str


class WeightedChoice:
    """O(log n) draws from fixed weights with a caller-supplied random.Random."""

    def __init__(self, items, weights) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True)
class AdWorld:
    campaigns: tuple[Campaign, ...]
    users: tuple[User, ...]

    def campaign_picker(self) -> WeightedChoice:
        # Zipf-like popularity: campaign k gets weight 1/(k+1).
        return WeightedChoice(self.campaigns, [1.0 / (k + 1) for k in range(len(self.campaigns))])

    def user_picker(self) -> WeightedChoice:
        # Heavy users: a power law over users, so some see many impressions.
        return WeightedChoice(self.users, [1.0 / (k + 1) ** 0.6 for k in range(len(self.users))])


def build_world(seed: int, campaigns: int = 50, users: int = 5_000) -> AdWorld:
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(f"world-{seed}")
    advertisers = [fake.company() for _ in range(max(3, campaigns // 5))]
    country = WeightedChoice(COUNTRY_WEIGHTS, COUNTRY_WEIGHTS.values())
    platform = WeightedChoice(PLATFORM_WEIGHTS, PLATFORM_WEIGHTS.values())
    campaign_list = []
    for number in range(1, campaigns + 1):
        campaign_id = f"camp-{number:05d}"
        creatives = tuple(f"cr-{number:05d}-{c}" for c in range(1, rng.randint(2, 6) + 1))
        campaign_list.append(
            Campaign(
                campaign_id=campaign_id,
                name=f"{fake.catch_phrase()} ({campaign_id})",
                advertiser=rng.choice(advertisers),
                budget_type=rng.choice(BUDGET_TYPES),
                budget_amount=float(rng.choice([500, 1_000, 2_500, 5_000, 10_000, 25_000])),
                creative_ids=creatives,
                base_bid=round(rng.uniform(0.03, 0.15), 4),
            )
        )
    user_list = [
        User(
            user_id=f"u-{fake.unique.hexify('^^^^^^^^^^^^')}",
            country=country.draw(rng),
            platform=platform.draw(rng),
            age_band=rng.choice(AGE_BANDS),
            gender=rng.choice(("F", "M", "U")),
        )
        for _ in range(users)
    ]
    return AdWorld(tuple(campaign_list), tuple(user_list))
