"""The Spark layer: Spark and Iceberg in this process, no service (see tests/conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def spark(local_spark):
    return local_spark
