"""The traffic generator without Kafka (--dry-run --output): funnel rates, each fault
class at its rate, determinism, and the records' shape."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import pytest

from conf.events import EVENT_TYPES, FIELD_NAMES, SCHEMA_VERSION
from producers.ad_traffic_generator import INVALID_CLASSES, main
from producers.partitioning import murmur2, partition_for

SEVEN_DAYS = 7 * 86_400
REQUIRED = ("event_id", "event_type", "impression_id", "event_timestamp")


def generate(tmp_path, *flags: str, count: int = 100_000, name: str = "out.jsonl") -> list[dict]:
    path = tmp_path / name
    assert main(["--dry-run", "--quiet", "--count", str(count), "--output", str(path), *flags]) == 0
    return [json.loads(line) for line in path.read_text().splitlines()]


def valid_events(records: list[dict]) -> list[dict]:
    return [json.loads(r["value"]) for r in records if r["kind"] in ("IMPRESSION", "CLICK", "CONVERSION")]


def within(observed: float, expected: float, trials: int, sigmas: float = 5.0) -> bool:
    """Binomial tolerance: |observed - expected| <= sigmas standard errors."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / trials)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("clean"), "--seed", "11")


def test_same_seed_gives_byte_identical_output(tmp_path):
    generate(tmp_path, "--seed", "5", "--all-faults", "0.01", count=20_000, name="a.jsonl")
    generate(tmp_path, "--seed", "5", "--all-faults", "0.01", count=20_000, name="b.jsonl")
    generate(tmp_path, "--seed", "6", "--all-faults", "0.01", count=20_000, name="c.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def test_every_record_is_keyed_by_its_impression_id(clean_run):
    for record in clean_run:
        assert json.loads(record["value"])["impression_id"] == record["key"]


def test_impression_ids_are_uuid7_minted_at_the_impression_time(clean_run):
    """Gold's partition is the day in the id: it must be the impression's own time."""
    import uuid

    impressions = [e for e in valid_events(clean_run) if e["event_type"] == "IMPRESSION"]
    for event in impressions[:: max(len(impressions) // 2000, 1)]:
        parsed = uuid.UUID(event["impression_id"].removeprefix("imp-"))
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert abs((parsed.int >> 80) - event["event_timestamp"] * 1000) <= 1, event  # ms, as rounded


def test_records_come_in_arrival_order_and_cover_more_than_a_week(clean_run):
    arrivals = [r["arrival_ms"] for r in clean_run]
    assert arrivals == sorted(arrivals)
    events = valid_events(clean_run)
    span = max(e["event_timestamp"] for e in events) - min(e["event_timestamp"] for e in events)
    assert span > SEVEN_DAYS


def test_funnel_rates_match_the_flags(clean_run):
    events = valid_events(clean_run)
    by_type = defaultdict(set)
    for event in events:
        by_type[event["event_type"]].add(event["impression_id"])
    impressions = len(by_type["IMPRESSION"])
    clicked = len(by_type["CLICK"])
    converted = len(by_type["CONVERSION"])
    assert impressions > 90_000
    assert within(clicked / impressions, 0.05, impressions)
    assert within(converted / clicked, 0.10, clicked)
    assert by_type["CLICK"] <= by_type["IMPRESSION"] and by_type["CONVERSION"] <= by_type["CLICK"]


def test_custom_rates_are_honoured(tmp_path):
    events = valid_events(generate(tmp_path, "--click-rate", "0.2", "--conversion-rate", "0.5", count=30_000))
    by_type = defaultdict(set)
    for event in events:
        by_type[event["event_type"]].add(event["impression_id"])
    impressions, clicked = len(by_type["IMPRESSION"]), len(by_type["CLICK"])
    assert within(clicked / impressions, 0.2, impressions)
    assert within(len(by_type["CONVERSION"]) / clicked, 0.5, clicked)


def test_funnel_has_repeat_touches_and_conversions_beyond_the_lookback(clean_run):
    events = valid_events(clean_run)
    per_impression = defaultdict(Counter)
    last_click = {}
    for event in sorted(events, key=lambda e: e["event_timestamp"]):
        per_impression[event["impression_id"]][event["event_type"]] += 1
        if event["event_type"] == "CLICK":
            last_click[event["impression_id"]] = event["event_timestamp"]
    assert any(c["CLICK"] >= 2 for c in per_impression.values())
    assert any(c["CONVERSION"] >= 2 for c in per_impression.values())
    conversions = [e for e in events if e["event_type"] == "CONVERSION"]
    beyond = [e for e in conversions if e["event_timestamp"] - last_click[e["impression_id"]] > SEVEN_DAYS]
    assert 0 < len(beyond) < 0.2 * len(conversions)
    assert all(e["conversion_value"] > 0 for e in conversions)
    assert all(e["bid_price"] > 0 for e in events if e["event_type"] == "IMPRESSION")


def test_delays_are_cut_at_the_30_day_horizon(tmp_path):
    # A sigma this wide puts a third of all delays beyond 30 days before the cut.
    records = generate(tmp_path, "--conversion-delay-sigma", "6", "--click-delay-sigma", "6", count=20_000)
    events = valid_events(records)
    impression_time = {e["impression_id"]: e["event_timestamp"] for e in events if e["event_type"] == "IMPRESSION"}
    delays = [e["event_timestamp"] - impression_time[e["impression_id"]] for e in events
              if e["event_type"] != "IMPRESSION"]
    assert max(delays) <= 2 * 30 * 86_400 + 1  # a click's delay, then the conversion's
    assert sum(d > 30 * 86_400 for d in delays) > 0


def test_no_faults_by_default(clean_run):
    kinds = Counter(r["kind"] for r in clean_run)
    assert set(kinds) == {"IMPRESSION", "CLICK", "CONVERSION"}
    event_ids = [json.loads(r["value"])["event_id"] for r in clean_run]
    assert len(event_ids) == len(set(event_ids))
    for record in clean_run:
        lateness = record["arrival_ms"] / 1000 - json.loads(record["value"])["event_timestamp"]
        assert 0 <= lateness <= 2.0 + 1e-3


def test_fast_encoder_writes_exactly_what_json_would(clean_run):
    for record in clean_run[:20_000]:
        assert json.dumps(json.loads(record["value"]), separators=(",", ":")) == record["value"]


@pytest.mark.parametrize("fault", INVALID_CLASSES)
def test_each_invalid_class_arrives_at_its_rate(tmp_path, fault):
    rate = 0.02
    records = generate(tmp_path, f"--{fault.replace('_', '-')}-rate", str(rate), count=50_000)
    broken = [r for r in records if r["kind"] == fault]
    valid = [r for r in records if r["kind"] in ("IMPRESSION", "CLICK", "CONVERSION")]
    assert within(len(broken) / len(valid), rate, len(valid))
    assert set(Counter(r["kind"] for r in records)) == {"IMPRESSION", "CLICK", "CONVERSION", fault}
    for record in broken:
        assert classify(record["value"]) == fault, record["value"]


def classify(value: str) -> str:
    """docs/design.md §4 validation, written out here to check what the generator broke."""
    try:
        event = json.loads(value)
    except ValueError:
        return "parse_error"
    if not isinstance(event, dict):
        return "parse_error"
    if any(event.get(k) in (None, "") for k in REQUIRED):
        return "missing_key"
    if event["event_type"] not in ("IMPRESSION", "CLICK", "CONVERSION"):
        return "unknown_type"
    if event["event_type"] == "IMPRESSION" and not event.get("campaign_id"):
        return "missing_key"
    if not isinstance(event["event_timestamp"], (int, float)):
        return "bad_timestamp"
    if event["bid_price"] < 0 or event["conversion_value"] < 0:
        return "bad_value"
    return "valid"


def test_duplicates_resend_the_same_bytes_at_their_rate(tmp_path):
    records = generate(tmp_path, "--duplicate-rate", "0.03", count=50_000)
    duplicates = [r for r in records if r["kind"] == "duplicate"]
    originals = {r["value"] for r in records if r["kind"] != "duplicate"}
    assert all(r["value"] in originals for r in duplicates)
    assert within(len(duplicates) / (len(records) - len(duplicates)), 0.03, len(records))


def test_late_arrivals_lag_by_the_configured_amount(tmp_path):
    records = generate(tmp_path, "--late-rate", "0.02", "--late-by-s", "172800", count=50_000)
    lateness = [r["arrival_ms"] / 1000 - json.loads(r["value"])["event_timestamp"] for r in records]
    late = [x for x in lateness if x > 3600]
    assert within(len(late) / len(records), 0.02, len(records))
    assert all(0.9 * 172_800 <= x <= 1.1 * 172_800 for x in late)


def test_out_of_order_impressions_arrive_after_their_follow_ups(tmp_path):
    records = generate(tmp_path, "--out-of-order-rate", "0.5", count=50_000)
    first_arrival, impression_arrival = {}, {}
    for r in records:
        event = json.loads(r["value"])
        if event["event_type"] == "IMPRESSION":
            impression_arrival[r["key"]] = r["arrival_ms"]
        else:
            first_arrival.setdefault(r["key"], r["arrival_ms"])
    late_impressions = [k for k, t in first_arrival.items() if impression_arrival[k] > t]
    assert within(len(late_impressions) / len(first_arrival), 0.5, len(first_arrival))


def test_clicks_before_the_impression_at_their_rate(tmp_path):
    events = valid_events(generate(tmp_path, "--click-before-impression-rate", "0.1", count=60_000))
    shown = {e["impression_id"]: e["event_timestamp"] for e in events if e["event_type"] == "IMPRESSION"}
    clicked = {e["impression_id"] for e in events if e["event_type"] == "CLICK"}
    early = {e["impression_id"] for e in events
             if e["event_type"] == "CLICK" and e["event_timestamp"] < shown[e["impression_id"]]}
    assert within(len(early) / len(clicked), 0.1, len(clicked))


def test_all_faults_switches_every_class_on(tmp_path):
    kinds = Counter(r["kind"] for r in generate(tmp_path, "--all-faults", "0.02", count=30_000))
    assert {"duplicate", *INVALID_CLASSES} <= set(kinds)


# Kafka's own vectors for its Java murmur2 (clients' UtilsTest.testMurmur2), as signed ints.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("key", sorted(JAVA_MURMUR2))
def test_murmur2_equals_the_java_clients(key):
    assert murmur2(key) == JAVA_MURMUR2[key] & 0xFFFFFFFF


def test_partition_is_the_positive_hash_modulo_the_partition_count():
    # -973932308 & 0x7fffffff = 1173551340; 1173551340 % 6 = 0, % 7 = 3
    assert [partition_for(b"21", n) for n in (1, 6, 7)] == [0, 0, 3]


def test_valid_events_follow_the_event_contract(clean_run):
    """Every valid event has exactly conf.events' fields, in its order, one of its types and
    its schema version: the engine reads what the generator writes."""
    events = valid_events(clean_run)
    assert {tuple(event) for event in events} == {FIELD_NAMES}
    assert {event["event_type"] for event in events} == set(EVENT_TYPES)
    assert {event["schema_version"] for event in events} == {SCHEMA_VERSION}


def test_runs_from_different_starts_share_no_event_id(tmp_path):
    """A second backfill (or tomorrow's live run) with the same seed must not resend the
    first one's event ids: they would all be DUPLICATEs."""
    first = generate(tmp_path, "--seed", "5", "--start", "2026-03-01T00:00:00Z", count=5_000, name="a.jsonl")
    second = generate(tmp_path, "--seed", "5", "--start", "2026-03-02T00:00:00Z", count=5_000, name="b.jsonl")
    ids = lambda records: {e["event_id"] for e in valid_events(records)}  # noqa: E731
    assert ids(first) and not ids(first) & ids(second)
    campaigns = lambda records: {e["campaign_id"] for e in valid_events(records)}  # noqa: E731
    assert campaigns(first) & campaigns(second), "the world (campaigns, users) is the seed's, whatever the start"


def test_until_stops_the_simulated_clock_and_sends_nothing_later(tmp_path):
    path = tmp_path / "until.jsonl"
    assert main(["--dry-run", "--quiet", "--output", str(path), "--start", "2026-03-01T00:00:00Z",
                 "--until", "2026-03-01T01:00:00Z", "--impressions-per-second", "2"]) == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    end_ms = 1772326800 * 1000  # 2026-03-01T01:00:00Z
    assert max(r["arrival_ms"] for r in records) <= end_ms
    impressions = [e for e in valid_events(records) if e["event_type"] == "IMPRESSION"]
    assert 2 * 3600 * 0.99 < len(impressions) <= 2 * 3600 + 1
    assert any(e["event_type"] == "CONVERSION" for e in valid_events(records))
