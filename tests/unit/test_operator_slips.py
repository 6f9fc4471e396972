"""Operator slips that must lose nothing, at the level of the pure pieces: Kafka offset
ranges (what Bronze and the audit hold, whatever the checkpoint), the bisection that
isolates poison records, the checkpoint lock held by another process, and the stack
launcher's pid files after a reboot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from conf.settings import REPO_ROOT
from engine.bronze_sink import covers, exclusion_sql, from_json, merge_ranges, overlap, resume_offsets, to_json
from engine.checkpoint_lock import CheckpointLock
from engine.poison import find_culprits, selection_sql


def test_ranges_merge_adjacent_and_overlapping_intervals():
    merged = merge_ranges({("t", 0): [[5, 9], [0, 4]], ("t", 1): [[10, 20]]}, {("t", 1): [[15, 30], [40, 41]]})
    assert merged == {("t", 0): [[0, 9]], ("t", 1): [[10, 30], [40, 41]]}
    assert from_json(to_json(merged)) == merged


def test_a_batch_is_split_into_what_the_table_holds_and_what_it_does_not():
    committed = {("t", 0): [[0, 99]], ("u", 0): [[0, 5]]}
    batch = {("t", 0): [[90, 120]], ("t", 1): [[0, 3]]}
    assert overlap(committed, batch) == {("t", 0): [[90, 99]]}
    assert not covers(committed, batch) and covers(committed, {("t", 0): [[10, 20]]})
    assert exclusion_sql(overlap(committed, batch)) == (
        "NOT ((kafka_topic = 't' AND kafka_partition = 0 AND kafka_offset BETWEEN 90 AND 99))")


def test_a_new_checkpoint_resumes_at_the_start_of_bronzes_last_batch():
    committed = {("t", 0): [[0, 99]], ("t", 1): [[0, 49]]}
    last_batch = {("t", 1): [[40, 49]]}
    # partition 0 resumes after what it holds, 1 re-reads its last batch (its Gold MERGE may
    # not have committed), 2 was never seen: earliest
    assert resume_offsets(committed, last_batch, "t", range(3)) == {"t": {"0": 100, "1": 40, "2": -2}}
    assert resume_offsets(committed, last_batch, "other", range(3)) is None


def test_the_ranges_come_from_the_nearest_marked_ancestor_not_the_newest_commit():
    from engine.bronze_sink import nearest_marked_ancestor

    from engine.bronze_sink import marked_lineage

    # 1 <- 2 (marked) <- 3 (a compaction, unmarked) <- 4 (marked, rolled back: not an ancestor of 3's line)
    snapshots = {1: (None, True, 1), 2: (1, True, 2), 3: (2, False, 3), 4: (2, True, 9)}
    assert nearest_marked_ancestor(3, snapshots) == 2 and marked_lineage(3, snapshots) == (2, [3, 2])
    assert nearest_marked_ancestor(4, snapshots) == 4
    assert nearest_marked_ancestor(9, snapshots) == 4  # the line cut by expiry: the newest marked stands in
    assert nearest_marked_ancestor(3, {3: (None, False, 3)}) is None  # nothing carries ranges: read the rows
    assert nearest_marked_ancestor(2, {2: (3, False, 2), 3: (2, False, 3)}) is None  # a loop ends


def test_bisection_finds_each_poison_record_within_its_budget():
    records = [("t", 0, offset) for offset in range(1000)]
    poison = {("t", 0, 17), ("t", 0, 900)}
    culprits, trials = find_culprits(records, lambda subset: bool(poison & set(subset)))
    assert culprits == sorted(poison) and trials <= 2 * 2 * 10 + 1


def test_bisection_gives_up_when_no_record_fails_alone_or_nothing_fails():
    records = [("t", 0, offset) for offset in range(1000)]
    assert find_culprits(records, lambda subset: len(subset) > 600)[0] is None  # only the whole batch fails
    assert find_culprits(records, lambda subset: False)[0] is None  # the dry run does not reproduce it
    assert find_culprits(records, lambda subset: True, max_trials=50)[0] is None  # everything fails: not data


def test_selection_sql_turns_consecutive_offsets_into_ranges():
    assert selection_sql([("t", 0, 3), ("t", 0, 1), ("t", 0, 2), ("t", 1, 2)], "topic", "partition", "offset") == (
        "((topic = 't' AND partition = 0 AND offset BETWEEN 1 AND 3) OR "
        "(topic = 't' AND partition = 1 AND offset BETWEEN 2 AND 2))")


def test_a_second_job_on_a_checkpoint_is_refused_and_a_dead_owners_lock_taken_over(tmp_path):
    checkpoint, locks = tmp_path / "checkpoint", tmp_path / "locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from engine.checkpoint_lock import CheckpointLock; "
         f"lock = CheckpointLock({str(checkpoint)!r}, {str(locks)!r}); lock.acquire(); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit, match=rf"in use by another attribution job \(pid {holder.pid} .*kill {holder.pid}"):
            CheckpointLock(str(checkpoint), locks).acquire()
        # the same checkpoint spelled differently is the same lock
        with pytest.raises(SystemExit):
            CheckpointLock(str(tmp_path / "x" / ".." / "checkpoint"), locks).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = CheckpointLock(str(checkpoint), locks)
    assert f"taken over from pid {holder.pid}" in lock.acquire()
    lock.release()
    assert CheckpointLock(str(checkpoint), locks).acquire() is None  # released cleanly: nothing to take over


def test_stack_down_never_signals_a_process_it_did_not_start(tmp_path):
    """After a reboot a pid file can name an unrelated process: its start time does not match.
    A clock that moved (NTP, a restored VM) must not make the stack's own processes strangers:
    `down` would leave them running."""
    from conf.settings import Settings
    from stack.launcher import LocalStack, start_ticks

    stack = LocalStack(Settings(runtime_dir=str(tmp_path)))
    service = stack.services[0]
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        started = psutil.Process(stranger.pid).create_time()
        stack.pid_file(service).write_text(json.dumps({"pid": stranger.pid, "started": started - 3600}))
        assert stack.process(service) is None
        stack.pid_file(service).write_text(str(stranger.pid))  # an older launcher's file: cwd is not the runtime dir
        assert stack.process(service) is None
        assert stack._stop(service) is False
        time.sleep(0.2)
        assert stranger.poll() is None, "an unrelated process was signalled"
        stack.pid_file(service).write_text(json.dumps({"pid": stranger.pid, "started": started}))
        assert stack.process(service).pid == stranger.pid  # the process it did start is recognised
        # ... also after the wall clock moved (its start in ticks since boot did not) ...
        ticks = start_ticks(stranger.pid)
        stack.pid_file(service).write_text(json.dumps({"pid": stranger.pid, "started": started - 3600,
                                                       "start_ticks": ticks}))
        assert stack.process(service).pid == stranger.pid
        # ... and not when the ticks differ (another process under a reused pid)
        stack.pid_file(service).write_text(json.dumps({"pid": stranger.pid, "started": started,
                                                       "start_ticks": ticks + 1}))
        assert stack.process(service) is None
    finally:
        stranger.kill()
        stranger.wait()
    assert os.path.exists(stack.pid_file(service))


@pytest.mark.parametrize("download", ["kafka", "iceberg_rest", "trino"])
def test_a_cached_download_that_does_not_match_its_pin_is_refused_naming_the_file(tmp_path, download):
    """Each pinned download, tampered with in the cache (a jar of the classpath, the Trino
    tarball), stops the start before it is used, naming the file to delete."""
    from conf.settings import Settings
    from stack.launcher import Downloads, StackError, versions

    pins = versions()
    cache = tmp_path / "cache"
    if download == "trino":
        tampered = cache / "downloads" / f"trino-server-{pins['trino']['version']}.tar.gz"
    else:
        name = {"kafka": f"kafka-{pins['kafka']['version']}",
                "iceberg_rest": f"iceberg-rest-{pins['iceberg_rest']['version']}"}[download]
        (cache / name).mkdir(parents=True)
        (cache / name / ".complete").touch()
        tampered = cache / name / "some-library-1.0.jar"
    tampered.parent.mkdir(parents=True, exist_ok=True)
    tampered.write_bytes(b"not what was pinned")
    with pytest.raises(StackError, match=rf"has SHA-256 .* but conf/versions.toml pins .*Delete {tampered.parent if download != 'trino' else tampered}"):
        getattr(Downloads(Settings(cache_dir=str(cache))), download)()
