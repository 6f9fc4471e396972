"""The dimensions and which of their attributes are history-tracked: the one place to
change what opens a new version (tracked, Type 2) and what is overwritten (Type 1)."""

from __future__ import annotations

from conf.tables import Tables
from dims.scd2 import Dimension

COLUMN_TYPES = {
    "name": "STRING", "advertiser": "STRING", "budget_type": "STRING", "budget_amount": "DOUBLE",
    "status": "STRING", "country": "STRING", "platform": "STRING", "age_band": "STRING", "gender": "STRING",
}


def campaigns(prefix: str = "") -> Dimension:
    return Dimension(
        table=Tables(prefix).dim_campaigns,
        natural_key="campaign_id",
        surrogate_key="campaign_key",
        tracked=("budget_amount", "budget_type", "status"),  # finance needs these as of each impression
        type1=("name", "advertiser"),
    )


def users(prefix: str = "") -> Dimension:
    return Dimension(
        table=Tables(prefix).dim_users,
        natural_key="user_id",
        surrogate_key="user_key",
        tracked=("country", "platform", "age_band"),
        type1=("gender",),
    )


DIMENSIONS = {"campaigns": campaigns, "users": users}
