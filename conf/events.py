"""The event contract: what a record on the `ad_events` topic holds (docs/design.md §3), the
audit reasons a record can be rejected for, and the dispositions a valid copy gets in Gold.
The generator writes these fields, the engine reads them, the oracle checks by them and the
dashboards name the reasons and dispositions; a unit test holds the generator to the order."""

from __future__ import annotations

SCHEMA_VERSION = 1

EVENT_TYPES = ("IMPRESSION", "CLICK", "CONVERSION")

# (field, JSON type, meaning), in the order the generator writes them.
EVENT_FIELDS = (
    ("event_id", "string", "unique per event; a retried send repeats it"),
    ("event_type", "string", "one of EVENT_TYPES"),
    ("event_timestamp", "number", "event time, Unix seconds (fractions allowed) or an ISO-8601 string"),
    ("impression_id", "string", "the funnel's key (and the Kafka key): a UUIDv7, optionally behind a prefix"),
    ("campaign_id", "string", "the campaign served"),
    ("creative_id", "string", "the creative served"),
    ("user_id", "string", "the user shown the ad"),
    ("geo_country", "string", "ISO 3166-1 alpha-2 country of the user"),
    ("platform", "string", "the user's platform (web, ios, android)"),
    ("bid_price", "number", "what the impression cost (impressions only; 0 otherwise)"),
    ("conversion_value", "number", "revenue of a conversion (conversions only; 0 otherwise)"),
    ("meta_pixels", "object", "tracking pixels; not used by attribution"),
    ("schema_version", "number", "SCHEMA_VERSION"),
)
FIELD_NAMES = tuple(name for name, _, _ in EVENT_FIELDS)

# Ids and attributes must be JSON strings (a number is BAD_ID / BAD_VALUE, not its rendering).
ID_FIELDS = ("event_id", "impression_id", "campaign_id", "creative_id", "user_id")
ATTRIBUTE_FIELDS = ("event_type", "geo_country", "platform")
AMOUNT_FIELDS = ("bid_price", "conversion_value")
# The fields attribution reads (meta_pixels and schema_version stay in Bronze's raw payload).
READ_FIELDS = tuple(name for name in FIELD_NAMES if name not in ("meta_pixels", "schema_version"))

# Audit reasons, in the order the checks run: the first failing check names the record's
# reason. The last two are not checks of a record: PROCESSING_ERROR marks records isolated
# from a failing batch, TOO_MANY_TOUCHES valid copies beyond a Gold row's cap.
REASONS = ("PARSE_ERROR", "MISSING_KEY", "BAD_ID", "UNKNOWN_TYPE", "BAD_VALUE", "IMPLAUSIBLE_TIME",
           "IMPLAUSIBLE_AMOUNT", "PROCESSING_ERROR", "TOO_MANY_TOUCHES")

# What became of each valid copy in its Gold row (docs/design.md §4).
DISPOSITIONS = ("IMPRESSION", "DUPLICATE_IMPRESSION", "DUPLICATE", "CLICK", "CLICK_BEFORE_IMPRESSION",
                "AWAITING_IMPRESSION", "ATTRIBUTED", "EXTRA_CONVERSION", "OUT_OF_WINDOW", "NO_CLICK")
