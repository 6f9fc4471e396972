"""The attribution rules v1 (docs/design.md §4) in plain Python: the tests' independent oracle.

Input: Kafka records as dicts with `key`, `value` (the raw string, or bytes), `arrival_ms`,
`partition`, `offset`. Output: the expected Gold rows (by impression_id), audit
reasons (by Kafka coordinates) and the disposition of every valid copy.
Written without importing engine code; times are integer microseconds.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from conf.events import EVENT_TYPES as TYPES, ID_FIELDS as IDS  # the contract; the rules below are the oracle's own

LOOKBACK_US = 7 * 86_400 * 1_000_000
LATE_THRESHOLD_MS = 3_600 * 1_000
MAX_AHEAD_US = 3_600 * 1_000_000  # event time at most 1 h after the Kafka timestamp
MAX_AGE_US = 400 * 86_400 * 1_000_000  # ... and at most 400 days before it
MAX_AMOUNT = 1e9
MAX_ID_LENGTH = 128
MAX_TOUCHES = 10_000  # copies a Gold row keeps, its first by (partition, offset)
FIRST_SECOND = -62_135_596_800  # 0001-01-01T00:00:00Z
END_SECOND = 253_402_300_800  # 10000-01-01T00:00:00Z


def id_day(impression_id: str):
    """The UTC day in a UUIDv7 impression id (its last 36 characters), else None."""
    tail = impression_id[-36:].lower()
    try:
        parsed = uuid.UUID(tail)
    except ValueError:
        return None
    if str(parsed) != tail or parsed.version != 7 or parsed.variant != uuid.RFC_4122:
        return None
    days = (parsed.int >> 80) // 86_400_000
    if days > (date.max - date(1970, 1, 1)).days:  # a day no date can hold: not time-ordered
        return None
    return date(1970, 1, 1) + timedelta(days=days)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _number(value):
    """A finite float from a JSON number, or a string written as one, else None."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, str) and not JSON_NUMBER.fullmatch(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(value) -> bool:
    """A lone surrogate (a pair decodes to one character; what is left is unpaired)."""
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def validate(value, arrival_us: int) -> tuple[str | None, dict | None]:
    """(reason, event): reason None means the event is valid."""
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        event = json.loads(text, parse_constant=_reject_constant) if text is not None else None
    except ValueError:  # also UnicodeDecodeError
        return "PARSE_ERROR", None
    if not isinstance(event, dict) or _has_surrogate(event):
        return "PARSE_ERROR", None
    ids = {k: event.get(k) for k in IDS}
    attributes = [event.get(k) for k in ("geo_country", "platform")]
    event = {k: _text(v) if k not in ("event_timestamp", "bid_price", "conversion_value") else v
             for k, v in event.items()}
    if any(_blank(event.get(k)) for k in ("event_id", "event_type", "impression_id", "event_timestamp")):
        return "MISSING_KEY", None
    if event["event_type"] == "IMPRESSION" and _blank(event.get("campaign_id")):
        return "MISSING_KEY", None
    if any(v is not None and (not isinstance(v, str) or len(v) > MAX_ID_LENGTH) for v in ids.values()):
        return "BAD_ID", None
    if event["event_type"] not in TYPES:
        return "UNKNOWN_TYPE", None
    seconds = _number(event["event_timestamp"])
    if seconds is None or not FIRST_SECOND <= seconds < END_SECOND:
        return "BAD_VALUE", None
    for name in ("bid_price", "conversion_value"):
        if event.get(name) is not None and (_number(event[name]) is None or _number(event[name]) < 0):
            return "BAD_VALUE", None
    if any(v is not None and not isinstance(v, str) for v in attributes):
        return "BAD_VALUE", None
    event["event_us"] = math.floor(seconds * 1_000_000 + 0.5)
    if not -MAX_AGE_US <= event["event_us"] - arrival_us <= MAX_AHEAD_US:
        return "IMPLAUSIBLE_TIME", None
    event["bid"] = _number(event.get("bid_price")) or 0.0
    event["value"] = _number(event.get("conversion_value")) or 0.0
    if event["bid"] > MAX_AMOUNT or event["value"] > MAX_AMOUNT:
        return "IMPLAUSIBLE_AMOUNT", None
    return None, event


@dataclass
class Touch:
    event: dict
    arrival_us: int
    partition: int
    offset: int

    @property
    def copy_key(self):
        return (self.arrival_us, self.partition, self.offset)


@dataclass
class Expected:
    gold: dict[str, dict] = field(default_factory=dict)
    audit: dict[tuple[int, int], str] = field(default_factory=dict)  # (partition, offset) -> reason
    dispositions: dict[tuple[int, int], str] = field(default_factory=dict)


def attribute(records: list[dict], lookback_us: int = LOOKBACK_US, late_threshold_ms: int = LATE_THRESHOLD_MS,
              max_touches: int = MAX_TOUCHES) -> Expected:
    expected = Expected()
    by_impression: dict[str, list[Touch]] = defaultdict(list)
    seen_coordinates = set()
    for record in records:
        coordinates = (record["partition"], record["offset"])
        if coordinates in seen_coordinates:  # the same Kafka record read twice
            continue
        seen_coordinates.add(coordinates)
        reason, event = validate(record["value"], record["arrival_ms"] * 1000)
        if reason:
            expected.audit[coordinates] = reason
            continue
        by_impression[event["impression_id"]].append(
            Touch(event, record["arrival_ms"] * 1000, record["partition"], record["offset"]))
    for impression_id, copies in by_impression.items():
        copies.sort(key=lambda t: (t.partition, t.offset))  # a row keeps its first copies by Kafka coordinates
        for touch in copies[max_touches:]:
            expected.audit[(touch.partition, touch.offset)] = "TOO_MANY_TOUCHES"
        copies = copies[:max_touches]
        expected.gold[impression_id] = _row(impression_id, copies, lookback_us, late_threshold_ms, expected.dispositions)
    return expected


def _row(impression_id, copies, lookback_us, late_threshold_ms, dispositions) -> dict:
    canonical: dict[str, Touch] = {}
    for touch in copies:
        event_id = touch.event["event_id"]
        if event_id not in canonical or touch.copy_key < canonical[event_id].copy_key:
            canonical[event_id] = touch
    touches = list(canonical.values())
    time_order = lambda t: (t.event["event_us"], t.event["event_id"])  # noqa: E731
    impressions = sorted((t for t in touches if t.event["event_type"] == "IMPRESSION"), key=time_order)
    impression = impressions[0] if impressions else None
    shown_us = impression.event["event_us"] if impression else None
    clicks = [t for t in touches if t.event["event_type"] == "CLICK" and impression and t.event["event_us"] >= shown_us]
    conversions = sorted((t for t in touches if t.event["event_type"] == "CONVERSION"), key=time_order)

    attributed_click, eligible = {}, {}
    for conversion in conversions:
        before = [c.event["event_us"] for c in clicks if c.event["event_us"] <= conversion.event["event_us"]]
        attributed_click[conversion.event["event_id"]] = max(before) if before else None
        eligible[conversion.event["event_id"]] = bool(before) and (
            conversion.event["event_us"] - max(before) <= lookback_us)
    first = next((c for c in conversions if eligible[c.event["event_id"]]), None)
    revenue_out_of_window = 0.0
    for conversion in conversions:
        if conversion is not first:
            revenue_out_of_window += conversion.event["value"]
    late_by_ms = max(math.floor((t.arrival_us - t.event["event_us"]) / 1000) for t in touches)

    for touch in copies:
        event = touch.event
        if canonical[event["event_id"]] is not touch:
            disposition = "DUPLICATE"
        elif event["event_type"] == "IMPRESSION":
            disposition = "IMPRESSION" if touch is impression else "DUPLICATE_IMPRESSION"
        elif event["event_type"] == "CLICK":
            disposition = ("AWAITING_IMPRESSION" if impression is None else
                           "CLICK_BEFORE_IMPRESSION" if event["event_us"] < shown_us else "CLICK")
        elif touch is first:
            disposition = "ATTRIBUTED"
        elif eligible[event["event_id"]]:
            disposition = "EXTRA_CONVERSION"
        elif attributed_click[event["event_id"]] is not None:
            disposition = "OUT_OF_WINDOW"
        else:
            disposition = "NO_CLICK"
        dispositions[(touch.partition, touch.offset)] = disposition

    source = impression.event if impression else {}
    return {
        "impression_id": impression_id,
        "impression_id_day": id_day(impression_id),
        "campaign_id": source.get("campaign_id"),
        "creative_id": source.get("creative_id"),
        "user_id": source.get("user_id"),
        "geo_country": source.get("geo_country"),
        "platform": source.get("platform"),
        "is_clicked": bool(clicks),
        "is_converted": first is not None,
        "impression_time": shown_us,
        "click_time": max((c.event["event_us"] for c in clicks), default=None),
        "conversion_time": first.event["event_us"] if first else None,
        "cost": impression.event["bid"] if impression else 0.0,
        "revenue": first.event["value"] if first else 0.0,
        "eligible": impression is not None and (not conversions or first is not None),
        "is_late": late_by_ms > late_threshold_ms,
        "late_by_ms": late_by_ms,
        "revenue_out_of_window": revenue_out_of_window,
        "converted_event_id": first.event["event_id"] if first else None,
    }
