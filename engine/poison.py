"""Poison batches: find the records that make a micro-batch fail, by bisection.

A batch that fails the same way again and again (a record that trips a bug, or a limit
nobody foresaw) would otherwise be retried forever: every restart replays it. The
streaming job (AttributionBatch) bisects the batch with dry runs — everything but the
commits — until it holds the records that fail on their own, then processes the rest
and sends those to Bronze and to the audit as PROCESSING_ERROR.

A failure that is not the records' fault (S3 credentials revoked, a disk full, a catalog
answering errors) must never be taken for poison: it would send good records out of Gold
and out of every replay. So before bisecting, a dry run of a canary — a valid impression
made up for the purpose — must pass, and a result that blames every record of the batch
is refused. Either way the batch is an outage: it is retried whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

Coordinate = tuple[str, int, int]  # (topic, partition, offset)


def find_culprits(records: Sequence[Coordinate], fails: Callable[[list[Coordinate]], bool],
                  max_trials: int = 100, max_culprits: int = 32) -> tuple[list[Coordinate] | None, int]:
    """(the records whose dry run fails, trials used); None when the whole set does not fail
    in a dry run or no small set explains the failure within the budget."""
    trials = 0

    def failing(subset: list[Coordinate]) -> bool:
        nonlocal trials
        trials += 1
        return fails(subset)

    if not records or not failing(list(records)):
        return None, trials
    culprits: list[Coordinate] = []
    pending = [list(records)]  # sets known to fail
    while pending:
        subset = pending.pop()
        if len(subset) == 1:
            culprits.append(subset[0])
        else:
            halves = [subset[:len(subset) // 2], subset[len(subset) // 2:]]
            failing_halves = [half for half in halves if failing(half)]
            if not failing_halves:  # only the two halves together fail: isolate the set if small
                if len(subset) > max_culprits:
                    return None, trials
                culprits.extend(subset)
            pending.extend(failing_halves)
        if trials > max_trials or len(culprits) > max_culprits:
            return None, trials
    return sorted(culprits), trials


def systemic(records: Sequence[Coordinate], culprits: Sequence[Coordinate]) -> bool:
    """Bisection that blames every record of a batch of several found no poison: whatever
    fails, fails for all of them."""
    return len(records) > 1 and len(culprits) == len(records)


def canary_value(now_seconds: float) -> bytes:
    """A valid impression at `now_seconds`, as a Kafka value: the known-good record a dry run
    must get through before any record of a failing batch is called poison. Its ids say what
    it is; it is never committed."""
    millis = int(now_seconds * 1000)
    stamp = f"{millis:012x}"
    return json.dumps({
        "event_id": "lakehouse-canary", "event_type": "IMPRESSION", "event_timestamp": now_seconds,
        "impression_id": f"{stamp[:8]}-{stamp[8:]}-7000-8000-000000000000", "campaign_id": "lakehouse-canary",
        "creative_id": "lakehouse-canary", "user_id": "lakehouse-canary", "geo_country": "US", "platform": "web",
        "bid_price": 0.01, "conversion_value": 0.0, "meta_pixels": {}, "schema_version": 1,
    }).encode()


def selection_sql(records: Sequence[Coordinate], topic: str = "kafka_topic", partition: str = "kafka_partition",
                  offset: str = "kafka_offset") -> str:
    """SQL: true for exactly these records (runs of consecutive offsets become one range)."""
    runs: list[list] = []
    for name, number, position in sorted(records):
        if runs and runs[-1][0] == name and runs[-1][1] == number and runs[-1][3] + 1 == position:
            runs[-1][3] = position
        else:
            runs.append([name, number, position, position])
    terms = [f"({topic} = '{name.replace(chr(39), chr(39) * 2)}' AND {partition} = {number} "
             f"AND {offset} BETWEEN {first} AND {last})" for name, number, first, last in runs]
    return "(" + " OR ".join(terms) + ")" if terms else "false"
