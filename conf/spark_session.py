"""The one SparkSession factory: Iceberg `lakehouse` catalog (REST + S3FileIO), the Iceberg
SQL extensions, the Maven packages and quiet logging.

Static settings (packages, extensions, catalog class) live in conf/spark/spark-defaults.conf
so that `spark-submit` reads the same file; this module points SPARK_CONF_DIR at it when
the JVM has not been started yet and adds the endpoints from the settings.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from conf.settings import CONF_DIR, Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_CONF_DIR = CONF_DIR / "spark"


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


def session_options(settings: Settings) -> dict[str, str]:
    return {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
        **catalog_options(settings),
    }


def build_spark(app_name: str, settings: Settings | None = None, **extra: str) -> SparkSession:
    """Build (or reuse) the session. Under spark-submit the master and packages given on
    the command line win; here they are only defaults."""
    settings = settings or get_settings()
    os.environ.setdefault("SPARK_CONF_DIR", str(SPARK_CONF_DIR))
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    options = session_options(settings)
    if _running_under_spark_submit():
        options.pop("spark.master")
        options.pop("spark.driver.memory")
    for key, value in {**options, **extra}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _running_under_spark_submit() -> bool:
    # spark-submit launches the Python driver with the gateway already up.
    return "PYSPARK_GATEWAY_PORT" in os.environ
