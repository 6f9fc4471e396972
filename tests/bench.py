"""`make bench`: benchmarks on the local stack, printing figures and ratios measured in
one run. The machine is noisy, so every figure is the median of several repeats and
comparisons are ratios of figures taken side by side.

    python -m tests.bench [--repeats 3] [--events 300000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from conf.settings import get_settings


def generator_throughput(events: int, dry_run: bool, topic: str) -> float:
    from producers.ad_traffic_generator import build_parser, run

    args = build_parser().parse_args(["--count", str(events), "--quiet", "--topic", topic, "--seed", "1"]
                                     + (["--dry-run"] if dry_run else []))
    started = time.perf_counter()
    run(args)
    sent_per_s = events / (time.perf_counter() - started)
    return sent_per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args(argv)

    from conf.stack import LocalStack

    stack = LocalStack(get_settings())
    if not all(stack.process(s) and s.healthy() for s in stack.services):
        sys.exit("the local stack is not up — run `make stack-up` first")

    topic = f"bench_{uuid.uuid4().hex[:8]}"
    rows = []
    to_kafka = [generator_throughput(args.events, False, topic) for _ in range(args.repeats)]
    generation_only = [generator_throughput(args.events, True, topic) for _ in range(args.repeats)]
    kafka_rate, dry_rate = statistics.median(to_kafka), statistics.median(generation_only)
    rows.append(("generator -> local Kafka (events/s)", f"{kafka_rate:,.0f}", "target >= 50,000",
                 f"{kafka_rate / 50_000:.2f} of target"))
    rows.append(("generator, --dry-run (events/s)", f"{dry_rate:,.0f}", "", ""))
    rows.append(("share of time spent producing", f"{1 - kafka_rate / dry_rate:.0%}", "",
                 "kafka-python's per-record path"))

    print(f"\nbenchmarks ({args.repeats} repeats, median; {args.events:,} events per run)\n")
    width = max(len(r[0]) for r in rows)
    for name, value, target, note in rows:
        print(f"  {name:<{width}}  {value:>12}  {target:<18} {note}")
    print("\n  runs:", ", ".join(f"{r:,.0f}" for r in to_kafka), "(to Kafka);",
          ", ".join(f"{r:,.0f}" for r in generation_only), "(dry run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
