"""progress_row: a StreamingQueryProgress document -> an ops.stream_progress row."""

from __future__ import annotations

from datetime import datetime, timezone

from engine.stream_progress import progress_row

PROGRESS = {
    "id": "q-1", "runId": "r-1", "name": "attribution", "timestamp": "2026-11-22T00:42:29.851Z", "batchId": 4,
    "batchDuration": 3551, "numInputRows": 1500, "inputRowsPerSecond": 120.5, "processedRowsPerSecond": 420.0,
    "durationMs": {"triggerExecution": 3545, "addBatch": 1643}, "eventTime": {},
    "sources": [{
        "description": "KafkaV2[Subscribe[ad_events]]",
        "startOffset": '{"ad_events":{"1":100,"0":200}}',
        "endOffset": '{"ad_events":{"1":900,"0":1000}}',
        "latestOffset": '{"ad_events":{"1":950,"0":1000}}',
        "numInputRows": 1500,
    }],
}


def test_offsets_and_lag_per_partition():
    row = progress_row(PROGRESS, max_event_time=datetime(2026, 1, 5, tzinfo=timezone.utc))
    assert [(p["kafka_partition"], p["start_offset"], p["end_offset"], p["latest_offset"], p["offsets_behind"])
            for p in row["partitions"]] == [(0, 200, 1000, 1000, 0), (1, 100, 900, 950, 50)]
    assert row["offsets_behind"] == 50
    assert (row["query_id"], row["batch_id"], row["num_input_rows"], row["batch_duration_ms"]) == ("q-1", 4, 1500, 3551)
    assert row["batch_timestamp"] == datetime(2026, 11, 22, 0, 42, 29, 851000, tzinfo=timezone.utc)
    assert row["trigger_execution_ms"] == 3545 and row["watermark"] is None


def test_first_batch_has_no_start_offsets():
    first = {**PROGRESS, "sources": [{**PROGRESS["sources"][0], "startOffset": None}]}
    row = progress_row(first)
    assert [p["start_offset"] for p in row["partitions"]] == [None, None]
    assert row["max_event_time"] is None
