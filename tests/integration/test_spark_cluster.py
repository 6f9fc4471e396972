"""The streaming job on a Spark standalone cluster (SPARK_MASTER=spark://...): the local
stack starts a master and two one-core workers, the job runs unchanged through
spark-submit with its checkpoint on S3, its tasks run in executors on both workers, a kill -9
loses nothing, and Gold equals the oracle."""

from __future__ import annotations

import time

import pytest

from stack.launcher import LocalStack, spark_cluster_state
from tests.streaming_helpers import Scenario

pytestmark = pytest.mark.stack

MASTER = "spark://127.0.0.1:7077"


@pytest.fixture(scope="module")
def cluster(stack, settings):
    cluster_settings = settings.model_copy(update={"spark_master": MASTER})
    local = LocalStack(cluster_settings)
    local.up()
    yield cluster_settings
    for service in local.services:
        if service.name.startswith("spark-"):
            local.stop(service.name)


def cluster_conf_dir(settings, tmp_path):
    """The Spark configuration `make` generates with SPARK_MASTER naming the cluster (spark-submit
    reads the master from it), written under tmp_path: the stack's own stays as it is."""
    from stack.spark_conf import spark_conf_dir

    return spark_conf_dir(settings.model_copy(update={"spark_master": MASTER, "runtime_dir": str(tmp_path)}))


def test_killed_on_the_cluster_it_resumes_from_its_s3_checkpoint_and_gold_equals_the_oracle(
        cluster, spark, settings, tmp_path):
    """The job on the cluster with its checkpoint on S3 (the default there) is killed with
    SIGKILL after its first batch; a new driver resumes from the S3 checkpoint and drains
    the rest. Its executors ran on both workers; Bronze holds each record once; Gold and the
    audit equal the oracle."""
    scenario = Scenario.generated("cluster", tmp_path, 2_000, 31, settings,
                                  job_args=["--max-offsets-per-trigger", "1000"],
                                  env={"SPARK_CONF_DIR": str(cluster_conf_dir(settings, tmp_path))})
    scenario.checkpoint = f"{cluster.checkpoints}/{scenario.topic}"
    assert scenario.checkpoint.startswith("s3a://")
    try:
        job = scenario.start(TRIGGER_INTERVAL="1 second")
        assert job.wait_for_batches(1), job.tail()
        job.kill()
        started = time.monotonic()
        drained = scenario.drain()
        print(f"\nkilled after its first batch; a new driver drained the rest from the S3 checkpoint in "
              f"{time.monotonic() - started:.1f}s")
        assert "new checkpoint" not in drained.stdout, "the S3 checkpoint was not found again"
        scenario.assert_bronze_exactly_once(spark)
        scenario.assert_gold_and_audit_match(spark)
        state = spark_cluster_state(cluster)
        apps = [app for app in state["completedapps"] if app["name"] == "attribution-streaming"]
        assert len(apps) >= 2, state["completedapps"]
        app_id = apps[-1]["id"]
        workers = set()
        for worker in state["workers"]:
            detail = spark_cluster_state(cluster, worker["webuiaddress"].rstrip("/") + "/json/")
            if any(executor["appid"] == app_id for executor in detail["finishedexecutors"] + detail["executors"]):
                workers.add(worker["id"])
        assert len(workers) == 2, f"the executors of {app_id} ran on {sorted(workers)}"
    finally:
        scenario.cleanup(spark)
        checkpoint = spark._jvm.org.apache.hadoop.fs.Path(scenario.checkpoint)
        checkpoint.getFileSystem(spark._jsc.hadoopConfiguration()).delete(checkpoint, True)
