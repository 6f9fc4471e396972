"""Shared fixtures of the three layers. tests/unit needs nothing. tests/spark gets `spark`,
a local session whose Iceberg catalog lives in a temporary directory (tests/spark/conftest.py).
tests/integration gets the local stack (started here if it is not already up, and stopped
again at the end only if this run started it) and `spark` on the stack's catalog
(tests/integration/conftest.py). Both layers share one JVM when run together."""

from __future__ import annotations

import os
import uuid

import pytest

from conf.settings import get_settings


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings):
    from stack.launcher import LocalStack

    local_stack = LocalStack(settings)
    already_up = all(local_stack.process(s) and s.healthy() for s in local_stack.services if not s.optional)
    if not already_up:
        local_stack.up()
    yield local_stack
    if not already_up and os.environ.get("KEEP_STACK") != "1":
        local_stack.down()


@pytest.fixture(scope="session")
def spark_session(settings):
    """The process's one SparkSession (one JVM) with the `lakehouse` catalog on the local
    stack's REST catalog and S3. Catalogs load on first use: building it needs no service."""
    from jobs.cli import start_spark

    session = start_spark(
        "tests",
        settings,
        **{"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def local_spark(spark_session, settings, tmp_path_factory):
    """A session of the same JVM whose `lakehouse` catalog is an Iceberg Hadoop catalog in a
    temporary directory: the same table names, DDL and SQL as on the stack, and no service.
    Catalogs are per session, so the stack's catalog stays what it is for the other layer."""
    session = spark_session.newSession()
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    warehouse = tmp_path_factory.mktemp("warehouse")
    for key in [key for key, _ in session.sparkContext.getConf().getAll() if key.startswith(prefix + ".")]:
        session.conf.unset(key)
    session.conf.set(prefix, "org.apache.iceberg.spark.SparkCatalog")
    session.conf.set(f"{prefix}.type", "hadoop")
    session.conf.set(f"{prefix}.warehouse", warehouse.as_uri())
    return session


@pytest.fixture
def namespace(spark, settings):
    """A fresh Iceberg namespace per test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    spark.sql(f"CREATE NAMESPACE {settings.catalog_name}.{name}")
    yield name
    from tests.attribution_helpers import drop_namespace

    drop_namespace(spark, f"{settings.catalog_name}.{name}")


@pytest.fixture
def trino_cursor(stack, settings):
    import trino

    connection = trino.dbapi.connect(
        host=settings.trino_host,
        port=settings.trino_port,
        user=settings.trino_user,
        catalog=settings.catalog_name,
    )
    yield connection.cursor()
    connection.close()
