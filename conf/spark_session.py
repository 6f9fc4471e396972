"""The one SparkSession factory: Iceberg `lakehouse` catalog (REST + S3FileIO), the Iceberg
SQL extensions, the connector jars and quiet logging.

Static settings (extensions, catalog class, logging) live in conf/spark/; the jars a driver
loads beside pyspark's own are named here (spark_jar_coordinates) and resolved once into the
download cache by stack/spark_conf.py, which writes the directory SPARK_CONF_DIR points at:
conf/spark's files plus `spark.jars`. spark-submit and this factory read that one directory;
this module adds the endpoints from the settings.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from conf.settings import CONF_DIR, Settings, get_settings, versions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_CONF_TEMPLATE = CONF_DIR / "spark"  # the static part of the generated SPARK_CONF_DIR


def spark_jar_coordinates() -> list[str]:
    """Maven coordinates of every jar a driver adds to pyspark's: the Iceberg runtime and
    AWS bundle, the Kafka connector and what it needs that pyspark does not ship, and S3A
    (Hadoop's S3 file system, for checkpoints on S3) with what it needs beside the bundle."""
    pins = versions()["spark"]
    scala, iceberg = pins["scala"], pins["iceberg"]
    line = pins["pyspark"].rsplit(".", 1)[0]
    return [
        f"org.apache.iceberg:iceberg-spark-runtime-{line}_{scala}:{iceberg}",
        f"org.apache.iceberg:iceberg-aws-bundle:{iceberg}",
        f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{pins['kafka_connector']}",
        f"org.apache.spark:spark-token-provider-kafka-0-10_{scala}:{pins['kafka_token_provider']}",
        f"org.apache.kafka:kafka-clients:{pins['kafka_clients']}",
        f"org.apache.commons:commons-pool2:{pins['commons_pool2']}",
        f"org.apache.hadoop:hadoop-aws:{pins['hadoop_aws']}",
        f"software.amazon.awssdk:s3-transfer-manager:{pins['aws_sdk']}",
        f"software.amazon.awssdk:apache-client:{pins['aws_sdk']}",
    ]


def catalog_options(settings: Settings) -> dict[str, str]:
    """Endpoint-dependent Spark options of the `lakehouse` catalog."""
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    return {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "rest",
        f"{prefix}.uri": settings.catalog_uri,
        f"{prefix}.warehouse": settings.warehouse,
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.s3.endpoint": settings.s3_endpoint,
        f"{prefix}.s3.path-style-access": "true",
        f"{prefix}.s3.access-key-id": settings.s3_access_key,
        f"{prefix}.s3.secret-access-key": settings.s3_secret_key,
        f"{prefix}.client.region": settings.s3_region,
    }


def s3a_options(settings: Settings) -> dict[str, str]:
    """Hadoop's S3 file system on the same S3 as the catalog: streaming checkpoints under s3a://."""
    return {
        "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint.startswith("https:")).lower(),
        "spark.hadoop.fs.s3a.access.key": settings.s3_access_key,
        "spark.hadoop.fs.s3a.secret.key": settings.s3_secret_key,
    }


def session_options(settings: Settings) -> dict[str, str]:
    return {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
        **catalog_options(settings),
        **s3a_options(settings),
    }


def build_spark(app_name: str, settings: Settings | None = None, **extra: str) -> SparkSession:
    """Build (or reuse) the session. Under spark-submit the master given on the command
    line wins; here it is only a default. SPARK_CONF_DIR must name the generated directory
    (jobs.cli.job_session and the Makefile set it)."""
    settings = settings or get_settings()
    if not os.environ.get("SPARK_CONF_DIR"):
        raise RuntimeError("SPARK_CONF_DIR is not set: run jobs through make (or set it to the directory "
                           "`python -m stack.spark_conf` prints)")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    options = session_options(settings)
    if running_under_spark_submit():
        options.pop("spark.master")
        options.pop("spark.driver.memory")
    for key, value in {**options, **extra}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def running_under_spark_submit() -> bool:
    # spark-submit launches the Python driver with the gateway already up.
    return "PYSPARK_GATEWAY_PORT" in os.environ
