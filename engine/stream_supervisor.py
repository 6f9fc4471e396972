"""Keeping the streaming query alive: a failed query (Kafka or the catalog gone) waits
for the services and restarts from its checkpoint; SIGTERM/SIGINT stop it after the running
batch commits; a thread writes ops.stream_progress beside the batches."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from conf.settings import Settings
from engine.attribution_batch import AttributionBatch
from engine.commits import first_line

log = logging.getLogger(__name__)

JOB_SERVICES = ("kafka", "s3", "catalog")


def wait_for_services(settings: Settings, timeout_s: float, stopping=lambda: False) -> None:
    """Block until Kafka, the S3 store and the catalog all answer (or the job is stopping);
    SystemExit after timeout_s."""
    from stack.preflight import problems

    deadline, announced = time.monotonic() + timeout_s, set()
    while not stopping() and (missing := problems(settings, JOB_SERVICES)):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {missing[0]}; gave up after {timeout_s:.0f}s")
        for line in set(missing) - announced:
            log.info(f"waiting: {line}")
        announced |= set(missing)
        time.sleep(2)


def record_pending_progress(batch_function: "AttributionBatch", spark, query) -> None:
    """The listener bus delivers the last batch's progress asynchronously: wait for it (it
    may already be delivered and written by the progress thread), then write what arrived
    to ops.stream_progress."""
    last, deadline = query.lastProgress, time.monotonic() + 10
    while last and time.monotonic() < deadline and \
            batch_function.recorder.newest.get(last["runId"], -1) < last["batchId"]:
        time.sleep(0.2)
    batch_function.record_progress(spark)


class ProgressWriter(threading.Thread):
    """Writes ops.stream_progress every `every` seconds beside the batches, not inside them:
    a progress commit (2–3 s here) no longer delays the data it reports on."""

    def __init__(self, batch_function: AttributionBatch, spark, every: float) -> None:
        super().__init__(name="stream-progress-writer", daemon=True)
        self.batch_function, self.spark, self.every = batch_function, spark, max(every, 1.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.batch_function.record_progress(self.spark)
            except Exception as error:  # noqa: BLE001 - the events stay queued; the next write retries
                log.warning(f"ops.stream_progress not written ({first_line(error)}); retrying in {self.every:.0f}s")

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def supervise(spark, settings: Settings, batch_function: AttributionBatch, start_query: Callable, *,
              progress_every: float, max_restarts: int, restart_wait: float) -> None:
    """Run the query until it ends (available-now), is stopped by a signal, or fails more
    than `max_restarts` times in a row (the count resets once a batch commits)."""
    running = {"query": start_query()}
    progress_writer = ProgressWriter(batch_function, spark, progress_every)
    progress_writer.start()

    def stop_gracefully(signum, _frame) -> None:
        def stop() -> None:
            log.info(f"{signal.Signals(signum).name}: stopping after the current batch ...")
            with batch_function.busy:  # a running batch finishes and commits first
                batch_function.stopping = True
            running["query"].stop()
        threading.Thread(target=stop, daemon=True).start()

    previous = {sig: signal.signal(sig, stop_gracefully) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        failures = 0
        while True:
            batches_before = len(batch_function.history)
            try:
                running["query"].awaitTermination()
                break
            except Exception as error:  # noqa: BLE001 - decided below: stop, restart or re-raise
                if batch_function.stopping:  # a batch refused while stopping ends the query with an error
                    break
                if batch_function.lease is not None and batch_function.lease.lost:
                    raise SystemExit(f"error: {batch_function.lease.lost}; this job stopped without committing "
                                     "its batch") from None
                failures = 1 if len(batch_function.history) > batches_before else failures + 1
                if failures > max_restarts:
                    raise
                log.warning(f"query failed ({first_line(error)}); restart {failures}/{max_restarts} from the checkpoint "
                            f"once Kafka, S3 and the catalog answer")
                wait_for_services(settings, restart_wait, lambda: batch_function.stopping)
                time.sleep(min(60, 2 ** failures))
                if batch_function.stopping:
                    break
                record_pending_progress(batch_function, spark, running["query"])
                running["query"] = start_query()
    finally:
        progress_writer.stop()
        record_pending_progress(batch_function, spark, running["query"])
        spark.streams.removeListener(batch_function.recorder)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
