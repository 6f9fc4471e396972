"""The integration layer: the local stack's services (see tests/conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def spark(stack, spark_session):
    return spark_session
