"""Shared fixtures. Unit tests need nothing; `spark` tests get one local session per
process; `stack` tests get the local stack (started here if it is not already up, and
stopped again at the end only if this run started it)."""

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
    from conf.stack import LocalStack

    local_stack = LocalStack(settings)
    already_up = all(local_stack.process(s) and s.healthy() for s in local_stack.services)
    if not already_up:
        local_stack.up()
    yield local_stack
    if not already_up and os.environ.get("KEEP_STACK") != "1":
        local_stack.down()


@pytest.fixture(scope="session")
def spark(stack, settings):
    from conf.spark_session import build_spark

    session = build_spark(
        "tests",
        settings,
        **{"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


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
