"""Stream observability: every micro-batch's progress in `ops.stream_progress`.

Spark commits no offsets to a Kafka consumer group, so consumer lag comes from the query
progress: per partition the batch's start and end offsets and the latest offset in Kafka.
A StreamingQueryListener queues each progress event; a thread of the job writes the queue
every --progress-every seconds and when the query ends, with a MERGE on (query_id,
batch_id), so a progress row is written once however often that is retried.
"""

from __future__ import annotations

import json
import queue
from datetime import datetime, timezone

from pyspark.sql.streaming import StreamingQueryListener

from conf.tables import STREAM_PROGRESS_COLUMNS

PROGRESS_COLUMNS = tuple(name for name, _, _ in STREAM_PROGRESS_COLUMNS)

def _offsets(text) -> dict:
    if not text:
        return {}
    return json.loads(text) if isinstance(text, str) else text


def progress_row(progress: dict, max_event_time: datetime | None = None) -> dict:
    """One ops.stream_progress row from a StreamingQueryProgress JSON document."""
    partitions = []
    for source in progress.get("sources", []):
        start, end, latest = (_offsets(source.get(k)) for k in ("startOffset", "endOffset", "latestOffset"))
        for topic, ends in end.items():
            for partition, end_offset in sorted(ends.items(), key=lambda item: int(item[0])):
                latest_offset = latest.get(topic, {}).get(partition)
                partitions.append({
                    "topic": topic, "kafka_partition": int(partition),
                    "start_offset": start.get(topic, {}).get(partition), "end_offset": end_offset,
                    "latest_offset": latest_offset,
                    "offsets_behind": None if latest_offset is None else max(latest_offset - end_offset, 0),
                })
    timestamp = datetime.strptime(progress["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    watermark = progress.get("eventTime", {}).get("watermark")
    return {
        "query_id": progress["id"], "run_id": progress.get("runId"), "query_name": progress.get("name"),
        "batch_id": progress["batchId"], "batch_timestamp": timestamp,
        "num_input_rows": progress.get("numInputRows"),
        "input_rows_per_second": float(progress.get("inputRowsPerSecond") or 0.0),
        "processed_rows_per_second": float(progress.get("processedRowsPerSecond") or 0.0),
        "batch_duration_ms": progress.get("batchDuration"),
        "trigger_execution_ms": progress.get("durationMs", {}).get("triggerExecution"),
        "max_event_time": max_event_time,
        "watermark": None if not watermark else datetime.strptime(watermark, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc),
        "offsets_behind": sum(p["offsets_behind"] or 0 for p in partitions),
        "partitions": partitions,
        "recorded_at": datetime.now(timezone.utc),
    }


class ProgressRecorder(StreamingQueryListener):
    """Queues progress documents; the job writes them (write_progress) from its own thread."""

    def __init__(self) -> None:
        self.pending: queue.Queue[dict] = queue.Queue()
        self.newest: dict[str, int] = {}  # run id -> the newest batch id whose event was delivered

    def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryProgress(self, event) -> None:  # noqa: N802
        document = json.loads(event.progress.json)
        self.newest[document["runId"]] = max(document["batchId"], self.newest.get(document["runId"], -1))
        self.pending.put(document)

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        pass

    def requeue(self, documents: list[dict]) -> None:
        for document in documents:
            self.pending.put(document)

    def drain(self) -> list[dict]:
        documents = []
        while True:
            try:
                documents.append(self.pending.get_nowait())
            except queue.Empty:
                return documents


def write_progress(spark, table: str, rows: list[dict]) -> int:
    """MERGE rows on (query_id, batch_id): writing a batch's progress twice is harmless.
    An idle trigger reports the batch id it is waiting to run; the later report of that
    batch replaces it."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = (row["query_id"], row["batch_id"])
        if key not in latest or row["batch_timestamp"] >= latest[key]["batch_timestamp"]:
            latest[key] = row
    rows = list(latest.values())
    if not rows:
        return 0
    from pyspark.sql.types import _parse_datatype_string

    schema = _parse_datatype_string(", ".join(f"{name} {kind}" for name, kind, _ in STREAM_PROGRESS_COLUMNS))
    frame = spark.createDataFrame([tuple(row[c] for c in PROGRESS_COLUMNS) for row in rows], schema)
    from engine.commits import retry_on_conflict

    view = "stream_progress_rows"
    frame.createOrReplaceTempView(view)
    try:
        # The streaming thread's session writes this table too, through its own catalog
        # cache: read the table afresh first, and re-plan if the other session committed first.
        spark.sql(f"REFRESH TABLE {table}")
        retry_on_conflict(spark, table, lambda: spark.sql(
            f"MERGE INTO {table} t USING {view} s ON t.query_id = s.query_id AND t.batch_id = s.batch_id "
            "WHEN MATCHED AND s.batch_timestamp > t.batch_timestamp THEN UPDATE SET * "
            "WHEN NOT MATCHED THEN INSERT *"), attempts=5)
    finally:
        spark.catalog.dropTempView(view)
    return len(rows)
