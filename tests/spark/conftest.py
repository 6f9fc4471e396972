"""The Spark layer: Spark and Iceberg in this process, no service (see tests/conftest.py)."""

import uuid

import pytest

from conf.tables import Tables, ensure_tables
from tests.attribution_helpers import drop_namespaces


@pytest.fixture(scope="session")
def spark(local_spark):
    return local_spark


@pytest.fixture(scope="module")
def tables(spark):
    """Fresh tables for one module's tests of the real batch function."""
    tables = Tables(f"batch{uuid.uuid4().hex[:8]}_")
    ensure_tables(spark, tables)
    yield tables
    drop_namespaces(spark, tables)
