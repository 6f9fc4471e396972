"""Who wrote the tables, on real Iceberg tables. One job per table set, whatever its
checkpoint (engine/writer_lease.py): a second writer is refused while the first holds the
lease, takes it once it is given back or lapsed, and the first, finding it taken, stops
before its next commit (the whole job refusing a second checkpoint over running tables:
tests/integration/test_exactly_once.py). And the offset ranges a restarted job trusts
come from the current snapshot's ancestry, not from the newest commit time."""

from __future__ import annotations

import os
import socket

import pytest

from engine.writer_lease import LEASE_SECONDS, Lease, LeaseLost, LeaseRefused, WriterLease, holder_alive


def test_a_second_writer_is_refused_until_the_first_gives_the_lease_back(spark, tables):
    first = WriterLease(spark, tables.bronze, "attribution-first", "s3a://bucket/checkpoints/first")
    second = WriterLease(spark, tables.bronze, "attribution-second", "/tmp/it's/another")
    assert first.acquire(settle_seconds=0) is None
    try:
        with pytest.raises(LeaseRefused, match="written by another attribution job .checkpoint s3a://bucket/"):
            second.acquire(settle_seconds=0)
    finally:
        first.release()
    assert second.acquire(settle_seconds=0) is None  # given back: no wait
    assert second.current().checkpoint == "/tmp/it's/another"  # a quote in the path survives
    second.release()
    assert second.current() is None


def test_a_writer_whose_lease_was_taken_stops_before_its_next_commit(spark, tables):
    first = WriterLease(spark, tables.bronze, "attribution-first", "/tmp/first")
    first.acquire(settle_seconds=0)
    first.stopped.set()  # no renewal thread in the way: the lease is taken over by hand below
    lapsed = Lease("attribution-other", "/tmp/other", "another-host", 1, None, 0.0)
    spark.sql(f"ALTER TABLE {tables.bronze} SET TBLPROPERTIES ('lakehouse.writer-lease'='{lapsed.to_json()}')")
    # Read afresh before the commit: a job behind its renewals (a starved JVM) notices at once.
    with pytest.raises(LeaseLost, match="taken by another job .checkpoint /tmp/other"):
        first.check()
    first.renew()  # lost: a renewal does not take it back
    first.release()
    assert first.current() == lapsed  # not its lease: left as it is


def test_a_lease_binds_while_fresh_and_its_holder_on_this_host_runs():
    host, now = socket.gethostname(), 1_000_000.0
    mine = Lease("w", "/c", host, os.getpid(), None, now)
    assert holder_alive(mine, now + 1, host)
    assert not holder_alive(mine, now + LEASE_SECONDS + 1, host)  # lapsed
    assert holder_alive(Lease("w", "/c", "elsewhere", 1, None, now), now + 1, host)  # another host: trusted until it lapses
    assert not holder_alive(Lease("w", "/c", host, os.getpid(), 7, now), now + 1, host, start_of=lambda pid: 8)
    assert not holder_alive(Lease("w", "/c", host, 2 ** 22 + 1, None, now), now + 1, host, start_of=lambda pid: None)
    assert Lease.from_json(mine.to_json()) == mine and Lease.from_json("not a lease") is None


def test_after_a_rollback_the_ranges_are_the_current_snapshots_and_nothing_is_lost(spark, tables):
    """Bronze rolled back past an append (an operator undoing a bad batch): the ranges are
    those of the snapshot now current, so the records of the undone append are appended
    again when re-read. By newest commit time they counted as held and were dropped."""
    import uuid

    from engine.bronze_sink import AppendOnce, committed_ranges, marked_snapshot

    table = f"lakehouse.{tables.prefix}bronze.rollback_{uuid.uuid4().hex[:6]}"
    spark.sql(f"CREATE TABLE {table} (kafka_topic STRING, kafka_partition INT, kafka_offset BIGINT) USING iceberg")
    rows = lambda first, last: spark.createDataFrame(  # noqa: E731
        [("t", 0, offset) for offset in range(first, last + 1)], "kafka_topic string, kafka_partition int, kafka_offset long")
    AppendOnce("w")(rows(0, 9), table, {("t", 0): [[0, 9]]})
    kept = marked_snapshot(spark, table)
    AppendOnce("w")(rows(10, 19), table, {("t", 0): [[10, 19]]})
    spark.sql(f"CALL lakehouse.system.rollback_to_snapshot('{table.removeprefix('lakehouse.')}', {kept})")
    assert committed_ranges(spark, table)[0] == {("t", 0): [[0, 9]]}
    assert AppendOnce("w2")(rows(0, 19), table, {("t", 0): [[0, 19]]}) == 10  # 10 held, 10 appended again
    offsets = sorted(r.kafka_offset for r in spark.table(table).collect())
    assert offsets == list(range(20))
