"""One attribution job per table set, whatever its checkpoint.

The checkpoint lock (engine/checkpoint_lock.py) keeps two jobs off one checkpoint on one
host. Two jobs with different checkpoints over the same tables would both append every
record to Bronze: each keeps its own view of the offset ranges Bronze holds, and two
Iceberg appends never conflict. So the writer's identity lives with the tables: a lease
in Bronze's table properties (LEASE_PROPERTY) naming the writer (its checkpoint), host,
pid and when it was last renewed. A job takes it at start, renews it every
LEASE_SECONDS / 4 and gives it back when it stops. Another writer's lease is honoured
while it is fresh (renewed within LEASE_SECONDS) and its holder, when on this host, still
runs; a job that finds its own lease taken stops before its next commit.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass

from conf.tables import LEASE_PROPERTY

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0


class LeaseRefused(SystemExit):
    """Another live job holds the tables."""


@dataclass(frozen=True)
class Lease:
    writer: str
    checkpoint: str
    host: str
    pid: int
    process_start: int | None  # start in clock ticks since boot (stack.launcher.start_ticks)
    renewed: float  # Unix seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str | None) -> Lease | None:
        try:
            return Lease(**json.loads(text)) if text else None
        except (TypeError, ValueError):
            return None

    def describe(self, now: float) -> str:
        return (f"checkpoint {self.checkpoint}, pid {self.pid} on {self.host}, "
                f"renewed {max(now - self.renewed, 0):.0f}s ago")


def holder_alive(lease: Lease, now: float, host: str, start_of=None) -> bool:
    """Whether `lease` still binds: renewed within LEASE_SECONDS, and, when its holder ran on
    this host, that process (same pid, same start) still runs."""
    from stack.launcher import start_ticks

    if now - lease.renewed > LEASE_SECONDS:
        return False
    if lease.host != host:
        return True
    started = (start_of or start_ticks)(lease.pid)
    return started is not None and (lease.process_start is None or started == lease.process_start)


class WriterLease:
    """The lease on `table` (Bronze) for `writer`: acquire() at start, then a thread renews
    it; check() before each commit raises once it was lost."""

    def __init__(self, spark, table: str, writer: str, checkpoint: str) -> None:
        from stack.launcher import start_ticks

        self.spark, self.table, self.writer, self.checkpoint = spark, table, writer, checkpoint
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.process_start = start_ticks(self.pid)
        self.lost: str | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.guard = threading.Lock()  # one read-and-write of the property at a time

    # Through Iceberg's Java API: a catalog round trip each, no Spark job to plan (a job
    # start reads the lease twice and writes it once).
    def current(self) -> Lease | None:
        from conf.tables import iceberg_table

        return Lease.from_json(iceberg_table(self.spark, self.table).properties().get(LEASE_PROPERTY))

    def _write(self) -> None:
        from conf.tables import iceberg_table

        lease = Lease(self.writer, self.checkpoint, self.host, self.pid, self.process_start, time.time())
        iceberg_table(self.spark, self.table).updateProperties().set(LEASE_PROPERTY, lease.to_json()).commit()

    def _refusal(self, holder: Lease) -> str:
        return (f"error: {self.table} and its Gold and audit are written by another attribution job "
                f"({holder.describe(time.time())}); two jobs on one table set would append Bronze twice. "
                f"Stop that job, or run this one on tables of its own (--table-prefix / TABLE_NAMESPACE_PREFIX); "
                f"a lease whose job died without stopping lapses {LEASE_SECONDS:.0f}s after its last renewal")

    def acquire(self, settle_seconds: float = 0.5) -> str | None:
        """Take the lease (LeaseRefused while another live writer holds it); a note when a
        lapsed lease was taken over. Read again after `settle_seconds`: of two jobs that
        took it at once, the one overwritten is refused."""
        with self.guard:
            holder = self.current()
            now = time.time()
            if holder and not self.owns(holder) and holder_alive(holder, now, self.host):
                raise LeaseRefused(self._refusal(holder))
            self._write()
        time.sleep(settle_seconds)
        after = self.current()
        if after is not None and not self.owns(after):
            raise LeaseRefused(self._refusal(after))
        self.thread = threading.Thread(target=self._renew_until_stopped, name="writer-lease", daemon=True)
        self.thread.start()
        if holder and not self.owns(holder):
            return f"writer lease on {self.table}: taken over from a lapsed one ({holder.describe(now)})"
        return None

    def owns(self, lease: Lease) -> bool:
        return (lease.writer, lease.host, lease.pid) == (self.writer, self.host, self.pid)

    def renew(self) -> None:
        with self.guard:
            if self.lost:
                return
            holder = self.current()
            if holder is not None and not self.owns(holder):
                self._lose(f"taken by another job ({holder.describe(time.time())})")
                return
            self._write()

    def _lose(self, how: str) -> None:
        self.lost = f"the writer lease on {self.table} was {how}"
        log.error(self.lost)

    def _renew_until_stopped(self) -> None:
        while not self.stopped.wait(LEASE_SECONDS / 4):
            try:
                self.renew()
            except Exception as error:  # noqa: BLE001 - a missed renewal is retried; the lease lasts 4 periods
                from engine.commits import first_line

                log.warning(f"writer lease on {self.table} not renewed ({first_line(error)}); retrying")

    def check(self) -> None:
        """Before a commit: the lease read afresh (one catalog round trip), so a job that fell
        behind its renewals (a starved JVM) and lost the lease meanwhile learns it now, not at
        its next renewal; once lost, LeaseLost (a RuntimeError: the batch is not committed,
        the job stops)."""
        with self.guard:
            if not self.lost:
                holder = self.current()
                if holder is None:
                    self._lose("removed")
                elif not self.owns(holder):
                    self._lose(f"taken by another job ({holder.describe(time.time())})")
        if self.lost:
            raise LeaseLost(f"{self.lost}: this job stops without committing")

    def release(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        with self.guard:
            holder = self.current()
            if holder is not None and self.owns(holder):
                from conf.tables import iceberg_table

                iceberg_table(self.spark, self.table).updateProperties().remove(LEASE_PROPERTY).commit()


class LeaseLost(RuntimeError):
    """This job's lease on its tables was taken: it must not commit again."""
