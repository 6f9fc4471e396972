"""Keyed ad traffic generator: IMPRESSION -> CLICK -> CONVERSION JSON events to Kafka.

    python -m producers.ad_traffic_generator --count 100000 --clock simulated --seed 7
    python -m producers.ad_traffic_generator --rate 500 --duration 60          # real time

Every record is keyed by impression_id, so all events of one impression land in one
partition. The Kafka record timestamp is the event's arrival time. The same --seed and
flags give the same records (in simulated time, byte for byte); --output writes them as
JSON lines (key, arrival time, raw value, fault class) and --dry-run sends nothing.
Faults are off by default; each has its own rate flag (see --help).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Iterator, NamedTuple

from conf.events import SCHEMA_VERSION
from producers.catalog import AdWorld, build_world
from stack.kafka_admin import ensure_topic
from stack.preflight import tcp_reachable

DAY = 86_400.0
INVALID_CLASSES = ("parse_error", "missing_key", "unknown_type", "bad_value", "bad_timestamp")


@dataclass(frozen=True)
class FunnelConfig:
    """Funnel shape and fault rates. Delays are lognormal: median seconds and sigma."""

    click_rate: float = 0.05
    conversion_rate: float = 0.10
    extra_click_rate: float = 0.15  # a clicked impression gets another click
    extra_conversion_rate: float = 0.10  # a converted impression converts again
    click_delay_median_s: float = 20.0
    click_delay_sigma: float = 1.2
    conversion_delay_median_s: float = 3 * 3600.0
    conversion_delay_sigma: float = 2.0  # heavy tail: ~2 % land beyond the 7-day lookback
    network_delay_max_s: float = 2.0  # arrival = event time + U(0, this)
    # Longest click or conversion delay: the lognormal tail is cut at a 30-day attribution
    # horizon. Uncut, about one conversion in 30,000 landed over a year out, and a Kafka broker
    # rejects a record stamped more than an hour ahead of its clock
    # (log.message.timestamp.after.max.ms), failing the whole producer batch around it.
    max_delay_s: float = 30 * DAY
    # faults (off by default)
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    late_by_s: float = 2 * DAY
    out_of_order_rate: float = 0.0  # clicked impressions whose IMPRESSION arrives after its click/conversion
    click_before_impression_rate: float = 0.0
    invalid_rates: dict[str, float] = field(default_factory=lambda: dict.fromkeys(INVALID_CLASSES, 0.0))


class Record(NamedTuple):
    """One Kafka record as it will be sent. A tuple, so the heap compares (arrival,
    sequence) in C; sequence is unique, so key and value are never compared."""

    arrival: float  # epoch seconds; the Kafka record timestamp
    sequence: int
    key: str
    value: bytes
    kind: str  # IMPRESSION / CLICK / CONVERSION / duplicate / <invalid class>

    def as_json_line(self) -> str:
        return json.dumps(
            {"key": self.key, "arrival_ms": int(round(self.arrival * 1000)), "kind": self.kind,
             "value": self.value.decode("utf-8")},
            separators=(",", ":"),
        )


class FunnelSimulator:
    """Yields records in arrival order. Impressions are spawned `density` per second of
    event time; their clicks and conversions are scheduled into a heap by arrival."""

    def __init__(self, world: AdWorld, config: FunnelConfig, seed: int, start: float, density: float) -> None:
        self.world, self.config = world, config
        # The stream's randomness (event ids included) depends on where it starts: two runs
        # from different starts (a second backfill, a live run tomorrow) share no event_id,
        # while one seed and one start still give byte-identical records.
        self.rng = random.Random(f"{seed}@{start!r}")
        self.start, self.density = start, density
        self.campaigns = world.campaign_picker()
        self.users = world.user_picker()
        self.pending: list[Record] = []
        self.sequence = 0
        self.impressions = 0

    # --- ids and encoding

    def _uuid(self, created_at: float | None = None) -> str:
        """A UUID string from the seeded generator, 5x faster than uuid.UUID: random (version 4),
        or with `created_at` (epoch seconds) time-ordered (version 7, RFC 9562: 48 bits of Unix
        milliseconds first). Gold is partitioned by the day in the impression id, so a MERGE
        reads only the days a batch names."""
        bits = self.rng.getrandbits(128)
        version = 4 if created_at is None else 7
        h = ("" if created_at is None else f"{round(created_at * 1000) & 0xFFFF_FFFF_FFFF:012x}") + f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{version}{h[13:16]}-{'89ab'[bits & 3]}{h[17:20]}-{h[20:32]}"

    def _schedule(self, arrival: float, key: str, value: bytes, kind: str) -> None:
        self.sequence += 1
        heapq.heappush(self.pending, Record(arrival, self.sequence, key, value, kind))

    @staticmethod
    def _encode(event: dict) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode()

    @staticmethod
    def _encode_valid(e: dict) -> bytes:
        """Byte-identical to _encode for the generator's own valid events (whose strings
        need no escaping: ids, country and platform codes), at a third of the cost."""
        pixels = '{"pixel_id":"%s"}' % e["meta_pixels"]["pixel_id"] if e["meta_pixels"] else "{}"
        return (
            f'{{"event_id":"{e["event_id"]}","event_type":"{e["event_type"]}",'
            f'"event_timestamp":{e["event_timestamp"]!r},"impression_id":"{e["impression_id"]}",'
            f'"campaign_id":"{e["campaign_id"]}","creative_id":"{e["creative_id"]}","user_id":"{e["user_id"]}",'
            f'"geo_country":"{e["geo_country"]}","platform":"{e["platform"]}","bid_price":{e["bid_price"]!r},'
            f'"conversion_value":{e["conversion_value"]!r},"meta_pixels":{pixels},"schema_version":{SCHEMA_VERSION}}}'
        ).encode()

    def _lognormal(self, median: float, sigma: float) -> float:
        return min(median * math.exp(sigma * self.rng.gauss(0.0, 1.0)), self.config.max_delay_s)

    def _arrival(self, event_time: float) -> float:
        if self.config.late_rate and self.rng.random() < self.config.late_rate:
            return event_time + self.config.late_by_s * self.rng.uniform(0.9, 1.1)
        return event_time + self.rng.uniform(0.0, self.config.network_delay_max_s)

    # --- the funnel of one impression

    def spawn_impression(self, event_time: float) -> None:
        config, rng = self.config, self.rng
        campaign = self.campaigns.draw(rng)
        user = self.users.draw(rng)
        impression_id = f"imp-{self._uuid(event_time)}"
        base = {
            "impression_id": impression_id,
            "campaign_id": campaign.campaign_id,
            "creative_id": rng.choice(campaign.creative_ids),
            "user_id": user.user_id,
            "geo_country": user.country,
            "platform": user.platform,
        }
        impression = {"event_id": self._uuid(), "event_type": "IMPRESSION", "event_timestamp": round(event_time, 3),
                      **base, "bid_price": round(campaign.base_bid * rng.uniform(0.6, 1.6), 4),
                      "conversion_value": 0.0, "meta_pixels": {}, "schema_version": SCHEMA_VERSION}
        follow_ups: list[tuple[float, dict]] = []
        if rng.random() < config.click_rate:
            clicks = 1 + (rng.random() < config.extra_click_rate)
            click_times = sorted(event_time + self._lognormal(config.click_delay_median_s, config.click_delay_sigma)
                                 for _ in range(clicks))
            if config.click_before_impression_rate and rng.random() < config.click_before_impression_rate:
                click_times[0] = event_time - rng.uniform(1.0, 30.0)
            for click_time in click_times:
                follow_ups.append((click_time, {"event_id": self._uuid(), "event_type": "CLICK",
                                                "event_timestamp": round(click_time, 3), **base, "bid_price": 0.0,
                                                "conversion_value": 0.0, "meta_pixels": {}, "schema_version": SCHEMA_VERSION}))
            if rng.random() < config.conversion_rate:
                conversions = 1 + (rng.random() < config.extra_conversion_rate)
                for _ in range(conversions):
                    converted_at = click_times[-1] + self._lognormal(config.conversion_delay_median_s,
                                                                     config.conversion_delay_sigma)
                    value = round(rng.lognormvariate(math.log(60.0), 0.8), 2)
                    follow_ups.append((converted_at, {"event_id": self._uuid(), "event_type": "CONVERSION",
                                                      "event_timestamp": round(converted_at, 3), **base,
                                                      "bid_price": 0.0, "conversion_value": value,
                                                      "meta_pixels": {"pixel_id": f"px-{campaign.campaign_id[5:]}"},
                                                      "schema_version": SCHEMA_VERSION}))

        arrivals = [(self._arrival(t), event) for t, event in follow_ups]
        impression_arrival = self._arrival(event_time)
        if arrivals and config.out_of_order_rate and rng.random() < config.out_of_order_rate:
            # The impression is delayed until after everything else of its funnel.
            impression_arrival = max(a for a, _ in arrivals) + rng.uniform(1.0, 60.0)
        for arrival, event in [(impression_arrival, impression), *arrivals]:
            self._emit(arrival, event)
        self.impressions += 1

    def _emit(self, arrival: float, event: dict) -> None:
        config, rng = self.config, self.rng
        key = event["impression_id"]
        value = self._encode_valid(event)
        self._schedule(arrival, key, value, event["event_type"])
        if config.duplicate_rate and rng.random() < config.duplicate_rate:
            self._schedule(arrival + rng.uniform(0.1, 600.0), key, value, "duplicate")
        for fault, rate in config.invalid_rates.items():
            if rate and rng.random() < rate:
                self._schedule(arrival, key, self._invalid(fault, event), fault)

    def _invalid(self, fault: str, event: dict) -> bytes:
        """A broken record of one class of docs/design.md §4, with a fresh event_id."""
        rng = self.rng
        broken = {**event, "event_id": self._uuid()}
        if fault == "parse_error":
            text = self._encode(broken).decode()
            return rng.choice([text[: len(text) // 2], "not json at all", "[1, 2, 3]", '"just a string"']).encode()
        if fault == "missing_key":
            victim = rng.choice(["event_id", "event_type", "impression_id", "event_timestamp"]
                                + (["campaign_id"] if event["event_type"] == "IMPRESSION" else []))
            if rng.random() < 0.3:
                broken[victim] = ""
            else:
                del broken[victim]
        elif fault == "unknown_type":
            broken["event_type"] = rng.choice(["VIEW", "BID", "impression", "CLICKED"])
        elif fault == "bad_value":
            field_name = "conversion_value" if event["event_type"] == "CONVERSION" else "bid_price"
            broken[field_name] = -abs(broken[field_name]) - round(rng.uniform(0.01, 5.0), 2)
        elif fault == "bad_timestamp":
            broken["event_timestamp"] = rng.choice(["yesterday", "2026-13-45T25:61:00", "NaN", "1e999"])
        return self._encode(broken)

    # --- the stream

    def records(self, new_impressions: Iterator[float]) -> Iterator[Record]:
        """Merge freshly spawned impressions with scheduled follow-ups, in arrival order.
        `new_impressions` yields impression event times and ends when generation stops;
        the caller decides whether to drain what is still pending."""
        for event_time in new_impressions:
            self.spawn_impression(event_time)
            horizon = event_time  # nothing spawned later can arrive before this
            while self.pending and self.pending[0].arrival <= horizon:
                yield heapq.heappop(self.pending)

    def drain(self, until: float = math.inf) -> Iterator[Record]:
        """The pending follow-ups arriving by `until`; later ones stay pending (unsent)."""
        while self.pending and self.pending[0].arrival <= until:
            yield heapq.heappop(self.pending)


# ---------------------------------------------------------------- sending


class KafkaSink:
    """librdkafka's idempotent producer (confluent-kafka). Keyed records are placed by its
    `murmur2_random` partitioner, the Java client's default for keyed records, so other
    producers of the same impression ids agree on the partition."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        from confluent_kafka import KafkaException, Producer

        if not tcp_reachable(bootstrap, timeout=3.0):
            raise SystemExit(f"error: Kafka not reachable at {bootstrap} — run `make stack-up`")
        try:
            ensure_topic(bootstrap, topic, partitions)
            self.producer = Producer({
                "bootstrap.servers": bootstrap,
                # Idempotent: a retried batch never turns into duplicates the test
                # oracle did not ask for (the duplicate fault is injected on purpose).
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 1 << 20,
                "partitioner": "murmur2_random",
                # Report failures only: a Python callback per delivered record would
                # cost as much as producing it.
                "delivery.report.only.error": True,
                "error_cb": self._error,
                "log_level": 3,  # errors; transient warnings (a broker still loading) are retried
            })
        except KafkaException as error:
            raise SystemExit(f"error: Kafka not reachable at {bootstrap} ({error}) — run `make stack-up`") from None
        self.topic = topic
        self.failures = 0
        self.first_failure: str | None = None
        self.unsent = 0

    def send(self, record: Record) -> None:
        timestamp = int(round(record.arrival * 1000))
        while True:
            try:
                self.producer.produce(self.topic, record.value, record.key, timestamp=timestamp,
                                      on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _delivered(self, error, _message) -> None:
        if error is not None:
            self._failed(error)

    def _error(self, error) -> None:
        if error.fatal():  # transient errors (a broker reconnect) are retried by librdkafka
            self._failed(error)

    def _failed(self, error, records: int = 1) -> None:
        self.failures += records
        if self.first_failure is None:  # the summary names it: a count alone says nothing
            self.first_failure = str(error)

    def close(self, timeout_s: float = 60.0) -> None:
        self.unsent = self.producer.flush(timeout_s)
        if self.unsent:
            self._failed(f"{self.unsent:,} records still queued after {timeout_s:.0f} s", self.unsent)


# ---------------------------------------------------------------- command line


def parse_time(text: str) -> float:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it has none (None, or off for a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default in (None, False) else super()._get_help_string(action)


FUNNEL_HELP = {
    "click_rate": "share of impressions clicked",
    "conversion_rate": "share of clicked impressions that convert",
    "extra_click_rate": "share of clicked impressions clicked again",
    "extra_conversion_rate": "share of converted impressions that convert again",
    "click_delay_median_s": "impression -> click delay, lognormal median (seconds)",
    "click_delay_sigma": "impression -> click delay, lognormal sigma",
    "conversion_delay_median_s": "click -> conversion delay, lognormal median (seconds)",
    "conversion_delay_sigma": "click -> conversion delay, lognormal sigma",
    "network_delay_max_s": "arrival = event time + uniform(0, this) seconds",
}
FAULT_HELP = {
    "duplicate_rate": "records sent twice (same event, a second Kafka record)",
    "late_rate": "records arriving --late-by-s after their event time",
    "out_of_order_rate": "clicked impressions whose IMPRESSION arrives after its click or conversion",
    "click_before_impression_rate": "clicks stamped before their impression (a fraud signal)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m producers.ad_traffic_generator",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=DefaultsShown)
    run = parser.add_argument_group("run")
    run.add_argument("--count", type=int, help="stop after this many records (simulated clock: the pending "
                     "clicks/conversions of the impressions already shown are sent too, unless --no-drain); "
                     "without --count and --duration the simulated clock stops at 100,000, the real one never")
    run.add_argument("--duration", type=float, help="stop after this many wall-clock seconds")
    run.add_argument("--rate", type=float, default=0.0, help="records per second; 0 = as fast as possible")
    run.add_argument("--seed", type=int, default=42, help="random seed: one seed, byte-identical records")
    run.add_argument("--clock", choices=["simulated", "real"], default="simulated",
                     help="simulated: event times run from --start; real: event times are the wall clock")
    run.add_argument("--start", default="2026-01-05T00:00:00Z", help="simulated clock: first impression's time")
    run.add_argument("--until", help="simulated clock: last impression's time; follow-ups arriving later are "
                     "not sent (a backfill up to now sends nothing from the future)")
    run.add_argument("--speedup", type=float, default=0.0,
                     help="simulated clock: event-time seconds per wall second (0 = unpaced)")
    run.add_argument("--impressions-per-second", type=float, default=50.0,
                     help="simulated clock: impressions per second of event time")
    run.add_argument("--no-drain", action="store_true", help="at the end, drop pending follow-up events")
    run.add_argument("--campaigns", type=int, default=50, help="campaigns the impressions are spread over")
    run.add_argument("--users", type=int, default=5_000, help="users the impressions are shown to")
    out = parser.add_argument_group("output")
    out.add_argument("--output", help="also write the records as JSON lines to this file")
    out.add_argument("--dry-run", action="store_true", help="send nothing to Kafka")
    out.add_argument("--topic", help="Kafka topic (default: KAFKA_TOPIC from the environment or .env)")
    out.add_argument("--bootstrap-servers",
                     help="Kafka brokers (default: KAFKA_BOOTSTRAP_SERVERS from the environment or .env)")
    out.add_argument("--quiet", action="store_true", help="no progress lines")
    funnel = parser.add_argument_group("funnel")
    defaults = FunnelConfig()
    for name, text in FUNNEL_HELP.items():
        funnel.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name), help=text)
    faults = parser.add_argument_group("faults (rates per record, all off by default)")
    for name, text in FAULT_HELP.items():
        faults.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, help=text)
    faults.add_argument("--late-by-s", type=float, default=defaults.late_by_s, help="how far late arrivals lag")
    for fault in INVALID_CLASSES:
        faults.add_argument(f"--{fault.replace('_', '-')}-rate", type=float, default=0.0,
                            help=f"extra invalid records of class {fault.upper()}")
    faults.add_argument("--all-faults", type=float, metavar="RATE",
                        help="set every fault rate not given explicitly to RATE")
    return parser


def config_from_args(args: argparse.Namespace) -> FunnelConfig:
    def rate(name: str) -> float:
        value = getattr(args, name)
        return args.all_faults if (args.all_faults is not None and value == 0.0) else value

    return FunnelConfig(
        click_rate=args.click_rate, conversion_rate=args.conversion_rate,
        extra_click_rate=args.extra_click_rate, extra_conversion_rate=args.extra_conversion_rate,
        click_delay_median_s=args.click_delay_median_s, click_delay_sigma=args.click_delay_sigma,
        conversion_delay_median_s=args.conversion_delay_median_s,
        conversion_delay_sigma=args.conversion_delay_sigma, network_delay_max_s=args.network_delay_max_s,
        duplicate_rate=rate("duplicate_rate"), late_rate=rate("late_rate"), late_by_s=args.late_by_s,
        out_of_order_rate=rate("out_of_order_rate"),
        click_before_impression_rate=rate("click_before_impression_rate"),
        invalid_rates={fault: rate(f"{fault}_rate") for fault in INVALID_CLASSES},
    )


class Progress:
    """A line on stderr every couple of seconds and a summary at the end."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = self.last = time.monotonic()
        self.kinds: Counter[str] = Counter()
        self.sent = 0

    def add(self, record: Record) -> None:
        self.sent += 1
        self.kinds[record.kind] += 1
        if not self.quiet and self.sent % 4096 == 0 and time.monotonic() - self.last >= 2.0:
            self.last = time.monotonic()
            print(f"  {self.line()}", file=sys.stderr, flush=True)

    def rate(self) -> float:
        return self.sent / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        kinds = " ".join(f"{k}={v:,}" for k, v in sorted(self.kinds.items()))
        return f"{self.sent:,} records, {self.rate():,.0f}/s  [{kinds}]"


def impression_times(args: argparse.Namespace, wall_start: float) -> Iterator[float]:
    """Event times of the impressions to spawn: simulated (a fixed density from --start)
    or real (the wall clock, paced by --rate)."""
    if args.clock == "simulated":
        step, t = 1.0 / args.impressions_per_second, parse_time(args.start)
        until = parse_time(args.until) if args.until else math.inf
        while t <= until:
            yield t
            t += step
        return
    while True:
        yield time.time()


def run(args: argparse.Namespace) -> int:
    from conf.settings import get_settings

    settings = get_settings()
    config = config_from_args(args)
    world = build_world(args.seed, campaigns=args.campaigns, users=args.users)
    wall_start = time.time()
    start = parse_time(args.start) if args.clock == "simulated" else wall_start
    simulator = FunnelSimulator(world, config, seed=args.seed, start=start, density=args.impressions_per_second)
    sink = None if args.dry_run else KafkaSink(args.bootstrap_servers or settings.kafka_bootstrap_servers,
                                               args.topic or settings.kafka_topic, settings.kafka_partitions)
    output: IO[str] | None = open(args.output, "w", encoding="utf-8") if args.output else None
    progress = Progress(args.quiet)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def pace(record: Record) -> None:
        if args.clock == "real":  # a delayed event waits for its arrival time
            delay = record.arrival - time.time()
            if delay > 0:
                time.sleep(delay)
        elif args.speedup > 0:
            due = (record.arrival - start) / args.speedup - (time.monotonic() - progress.started)
            if due > 0:
                time.sleep(due)
        if args.rate > 0:
            ahead = progress.sent / args.rate - (time.monotonic() - progress.started)
            if ahead > 0:
                time.sleep(ahead)

    def done() -> bool:
        if stop["now"] or (args.count is not None and progress.sent >= args.count):
            return True
        return args.duration is not None and time.monotonic() - progress.started >= args.duration

    def deliver(record: Record) -> None:
        pace(record)
        if sink:
            sink.send(record)
        if output:
            output.write(record.as_json_line() + "\n")
        progress.add(record)

    interrupted = False
    try:
        for record in simulator.records(impression_times(args, wall_start)):
            deliver(record)
            if done():
                break
        if args.clock == "simulated" and not args.no_drain and not stop["now"]:
            for record in simulator.drain(parse_time(args.until) if args.until else math.inf):
                deliver(record)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if sink:
            sink.close()
        if output:
            output.close()
    pending = len(simulator.pending)
    print(f"{'interrupted: ' if interrupted else ''}sent {progress.line()}; "
          f"{simulator.impressions:,} impressions; {pending:,} follow-ups not sent"
          + (f"; {sink.failures:,} send failures (first: {sink.first_failure})" if sink and sink.failures else "")
          + (" (dry run)" if args.dry_run else ""), file=sys.stderr)
    return 1 if (sink and sink.failures) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count is None and args.duration is None and args.until is None and args.clock == "simulated":
        args.count = 100_000
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
