"""The integration layer: the local stack's services (see tests/conftest.py), and the
scenario the dashboard tests (Trino views, cards, panels, Superset in a browser) read."""

from datetime import datetime, timedelta, timezone

import pytest

from tests import stack_locks
from tests.streaming_helpers import Scenario

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
SEED = 41


@pytest.fixture(scope="session")
def spark(stack, spark_session):
    return spark_session


@pytest.fixture(scope="module", autouse=True)
def stack_in_use(request, settings):
    """A module uses the stack beside the other xdist worker's modules, or alone when it stops
    services (module-level STOPS_SERVICES = True): see tests/stack_locks.py."""
    stops = getattr(request.module, "STOPS_SERVICES", False)
    with stack_locks.alone(settings) if stops else stack_locks.sharing(settings):
        yield


@pytest.fixture(scope="session")
def served(stack, spark, settings, tmp_path_factory):
    """The serving layer's scenario, shared by the dashboard modules: ~12k impressions over
    ~33 h of event time (two UTC days), every fault on; campaign budgets change every 12 h;
    the rollups refreshed."""
    from dims.campaign_scd2_job import run as run_dims
    from dims.dimensions import campaigns
    from jobs.attribution_models.job import run as run_models
    from jobs.attribution_streaming_job import parse_args, run as run_attribution
    from jobs.rollup_job import refresh_all
    from producers.ad_traffic_generator import main as generate
    from producers.campaign_feed import FeedConfig, snapshots, write_snapshots

    work = tmp_path_factory.mktemp("served")
    scenario = Scenario("dash", work, 14_000, SEED, settings.kafka_partitions)
    assert generate(["--count", "14000", "--seed", str(SEED), "--all-faults", "0.01", "--topic", scenario.topic,
                     "--impressions-per-second", "0.1", "--start", START.isoformat(), "--output",
                     str(scenario.output), "--quiet"]) == 0
    run_attribution(parse_args(["--trigger", "available-now", "--topic", scenario.topic, "--table-prefix",
                                scenario.tables.prefix, "--checkpoint", str(scenario.checkpoint),
                                "--max-offsets-per-trigger", "5000"]))
    series = snapshots(SEED, 4, START, timedelta(hours=12), 50,
                       FeedConfig(budget_change_rate=0.5, absent_rate=0.0, null_rate=0.0, launched_share=1.0))
    run_dims(spark, campaigns(scenario.tables.prefix), write_snapshots(work / "landing", series))
    refresh_all(spark, scenario.tables)  # what `make rollups` does: the views read the rollups
    run_models(spark, scenario.tables, as_of=START + timedelta(days=10))  # every conversion (<= 7 days after its click) is in the window
    records = scenario.records()
    expected = scenario.expected()
    yield {"scenario": scenario, "prefix": scenario.tables.prefix, "records": records, "expected": expected,
           "series": series}
    with stack_locks.sharing(settings):  # torn down at the session's end, outside any module
        scenario.cleanup(spark)


@pytest.fixture(scope="session")
def applied(served):
    from dashboards.apply import main as apply_dashboards

    assert apply_dashboards(["--table-prefix", served["prefix"]]) == 0
    return served
