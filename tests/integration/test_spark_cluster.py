"""The streaming job on a Spark standalone cluster (SPARK_MASTER=spark://...): the local
stack starts a master and two one-core workers, the job runs unchanged through
spark-submit, its tasks run in executors on both workers, and Gold equals the oracle."""

from __future__ import annotations

import re
import shutil

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


def cluster_conf_dir(tmp_path):
    """The generated Spark configuration with the cluster as its master (spark-submit reads
    the master from it, as `make` does with SPARK_MASTER set)."""
    from stack.spark_conf import spark_conf_dir

    target = shutil.copytree(spark_conf_dir(), tmp_path / "spark-conf")
    defaults = target / "spark-defaults.conf"
    text, count = re.subn(r"(?m)^spark\.master\s+.*$", f"spark.master  {MASTER}", defaults.read_text())
    assert count == 1
    defaults.write_text(text)
    return target


def test_the_job_runs_on_both_workers_and_gold_equals_the_oracle(cluster, spark, settings, tmp_path):
    scenario = Scenario.generated("cluster", tmp_path, 3_000, 31, settings,
                                  job_args=["--max-offsets-per-trigger", "1500"],
                                  env={"SPARK_CONF_DIR": str(cluster_conf_dir(tmp_path))})
    try:
        scenario.drain()
        scenario.assert_bronze_exactly_once(spark)
        scenario.assert_gold_and_audit_match(spark)
        state = spark_cluster_state(cluster)
        apps = [app for app in state["completedapps"] if app["name"] == "attribution-streaming"]
        assert apps, state["completedapps"]
        app_id = apps[-1]["id"]
        hosts = set()
        for worker in state["workers"]:
            detail = spark_cluster_state(cluster, f"http://{worker['webuiaddress'].split('//')[1]}/json/")
            if any(executor["appid"] == app_id for executor in detail["finishedexecutors"] + detail["executors"]):
                hosts.add(worker["id"])
        assert len(hosts) == 2, f"executors of {app_id} ran on {sorted(hosts)}"
    finally:
        scenario.cleanup(spark)
