"""No download at job start: once the jars are in the download cache, a Spark driver starts
with no network at all (a network namespace holding only loopback) and loads the Kafka
connector with its token provider, the Iceberg runtime and the AWS bundle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from stack.spark_conf import spark_conf_dir

pytestmark = pytest.mark.spark

PROBE = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
loader = spark.sparkContext._jvm.Thread.currentThread().getContextClassLoader()
for name in ("org.apache.spark.kafka010.KafkaConfigUpdater", "org.apache.spark.sql.kafka010.KafkaSourceProvider",
             "org.apache.iceberg.spark.SparkCatalog", "org.apache.iceberg.aws.s3.S3FileIO"):
    spark.sparkContext._jvm.java.lang.Class.forName(name, True, loader)
print("loaded")
"""


def test_a_driver_starts_without_network_once_jars_are_cached(spark):  # `spark` filled the cache
    if shutil.which("unshare") is None or shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root, unshare and ip (util-linux, iproute2) for a network namespace")
    env = {**os.environ, "SPARK_CONF_DIR": str(spark_conf_dir()), "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable,
                             PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "loaded" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]
