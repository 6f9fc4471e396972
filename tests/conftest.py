"""Shared fixtures of the three layers. tests/unit needs nothing. tests/spark gets `spark`,
a local session whose Iceberg catalog lives in a temporary directory (tests/spark/conftest.py).
tests/integration gets the local stack (started here if it is not already up, and stopped
again at the end only if this run started it) and `spark` on the stack's catalog
(tests/integration/conftest.py). Both layers share one JVM per pytest process; `make test`
runs two (pytest-xdist, docs/operations.md "What is verified where")."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from conf.settings import get_settings
from tests import stack_locks

RUN_ID = "LAKEHOUSE_TEST_RUN"  # set by the controlling process, inherited by xdist's workers


@pytest.fixture(scope="session")
def settings():
    return get_settings()


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controlling process (xdist's or a plain run)
        os.environ.setdefault(RUN_ID, uuid.uuid4().hex)


def pytest_runtest_logreport(report):
    """TEST_TIMELINE=FILE: one JSON line per test phase (worker, test, phase, start, stop), to
    see where a run's wall time went (docs/benchmarks.md)."""
    path = os.environ.get("TEST_TIMELINE")
    if path and not hasattr(report, "node"):  # written where it ran, not again by xdist's controller
        with open(path, "a") as timeline:
            timeline.write(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "test": report.nodeid,
                                       "phase": report.when, "start": report.start, "stop": report.stop}) + "\n")


def pytest_itemcollected(item):
    """`make test` runs two xdist workers (--dist loadgroup): a module's tests stay together in
    one worker, so module fixtures run once; modules may name a shared group instead. (Marked
    here, at collection: xdist reads the groups in its own pytest_collection_modifyitems.)"""
    if item.get_closest_marker("xdist_group") is None:
        item.add_marker(pytest.mark.xdist_group(item.module.__name__))


# The order in which xdist hands out the groups (make test: --no-loadscope-reorder): the
# longest first, so that the two workers finish together. "restarts" is the kill scenario
# and then the outage test, which has the stack to itself: the other worker must have left
# the stack's modules by then, so it takes e2e and the dashboards' scenario, then the Spark
# layer. The live demo, which measures latency, comes last of the long ones: the groups
# handed out after it (unit and small Spark modules) are light, and the cluster's five JVMs
# and the image builds are over by then.
SCHEDULE = ("restarts", "test_attribution_e2e", "served", "test_attribution_properties", "test_scd2",
            "test_hostile_input", "test_hot_keys", "test_spark_cluster", "test_images", "offset_gaps", "live_demo")
LAST = ("test_generator_kafka", "test_kafka_keys", "test_stack")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        group = item.get_closest_marker("xdist_group").args[0].rsplit(".", 1)[-1]
        if group in LAST:
            return len(SCHEDULE) + 1
        return SCHEDULE.index(group) if group in SCHEDULE else len(SCHEDULE)

    items.sort(key=rank)  # stable: the rest keep their collection order


def pytest_sessionfinish(session):
    """The local stack is stopped by the controlling process once every worker is done, and
    only when a worker of this run started it."""
    if hasattr(session.config, "workerinput") or os.environ.get("KEEP_STACK") == "1":
        return
    settings = get_settings()
    marker = started_marker(settings)
    if marker.exists() and marker.read_text() == os.environ[RUN_ID]:
        from stack.launcher import LocalStack

        LocalStack(settings).down()
        marker.unlink()


def started_marker(settings) -> Path:
    return Path(settings.runtime_dir) / "started-by-tests"


@pytest.fixture(scope="session")
def stack(settings):
    """The local stack, started by the first worker that needs it (if it is not up already)."""
    from stack.launcher import LocalStack

    local_stack = LocalStack(settings)
    with stack_locks.starting(settings):
        if not all(local_stack.process(s) and s.healthy() for s in local_stack.required()):
            local_stack.up()
            started_marker(settings).write_text(os.environ[RUN_ID])
    return local_stack


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
