"""Superset on the local stack, in a real browser: Playwright drives Debian's chromium, logs
in, opens both dashboards over the dashboard scenario (tests/integration/conftest.py) and
waits until every chart has rendered. No chart shows an error; the ROAS dashboard's
headline numbers equal the oracle's, and after choosing one campaign in its filter they
equal the oracle's for that campaign. A failing test leaves a screenshot (path printed)."""

from __future__ import annotations

import contextlib
import shutil
import time

import pytest

from dashboards import superset_bootstrap
from dashboards.superset_page import RENDER_TIMEOUT_S, chart_texts, log_in, wait_finished

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("served")]  # one worker computes `served`


@pytest.fixture(scope="module")
def superset(stack, applied, settings):
    import trino

    stack.up(("superset",))
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    try:
        urls = superset_bootstrap.apply(settings, applied["prefix"], connection.cursor())
    finally:
        connection.close()
    yield {**applied, "urls": urls}
    superset_bootstrap.remove(settings, applied["prefix"])  # again, if a test failed before the last one


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def session_state(superset, browser, settings):
    """Cookies of one logged-in browser context, reused by every test's fresh context."""
    context = browser.new_context()
    log_in(context.new_page(), settings)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser, session_state):
    context = browser.new_context(viewport={"width": 1600, "height": 2200}, storage_state=session_state)
    yield context.new_page()
    context.close()


@contextlib.contextmanager
def screenshot_on_failure(page, tmp_path_factory, name: str):
    try:
        yield
    except BaseException:
        path = tmp_path_factory.mktemp("screenshots") / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"\nscreenshot: {path}")
        raise


def rendered(page, expected_charts: int) -> dict[str, str]:
    """Wait until every chart has rendered or failed; returns {chart title: its text}, and
    fails naming every chart that shows an error or no data."""
    failed = {name: state for name, state in wait_finished(page, expected_charts).items() if state != "rendered"}
    assert not failed, failed
    return chart_texts(page)


def choose_campaign(page, campaign: str) -> None:
    """In the filter bar: open the Campaign select, pick `campaign`, apply."""
    control = page.locator("[data-test='filter-bar'] .ant-select").first  # the one select filter: Campaign
    control.click()
    page.keyboard.type(campaign)
    page.locator(".ant-select-item-option", has_text=campaign).first.click()
    page.keyboard.press("Escape")
    page.click("[data-test='filter-bar__apply-button']")


def headline(texts: dict[str, str]) -> dict[str, str]:
    """The big numbers as the page shows them (conf/measures.py's formats: currency "$,.2f")."""
    return {title: texts[title].split("\n")[-1].strip() for title in ("ROAS", "Revenue", "Cost", "Conversions")}


def oracle_headline(rows: list[dict]) -> dict[str, str]:
    cost, revenue = sum(r["cost"] for r in rows), sum(r["revenue"] for r in rows)
    return {"ROAS": f"{revenue / cost:,.2f}", "Revenue": f"${revenue:,.2f}", "Cost": f"${cost:,.2f}",
            "Conversions": f"{sum(r['is_converted'] for r in rows):,d}"}


def open_dashboard(page, superset, title: str) -> dict[str, str]:
    """Open a dashboard and wait for every chart; prints how long that took."""
    dashboard = next(d for d in superset_bootstrap.DASHBOARDS if d.title == title)
    started = time.monotonic()
    page.goto(superset["urls"][title])
    texts = rendered(page, len(dashboard.charts))
    print(f"\n{title} rendered in {time.monotonic() - started:.1f}s")
    return texts


def impressions(expected) -> list[dict]:
    return [row for row in expected.gold.values() if row["impression_time"] is not None]


def test_roas_dashboard_renders_and_its_headline_equals_the_oracle(superset, page, tmp_path_factory):
    with screenshot_on_failure(page, tmp_path_factory, "roas"):
        texts = open_dashboard(page, superset, "ROAS & Performance")
        assert headline(texts) == oracle_headline(impressions(superset["expected"]))


def test_the_campaign_filter_gives_the_oracles_numbers_for_that_campaign(superset, page, tmp_path_factory):
    rows = impressions(superset["expected"])
    campaign = sorted({r["campaign_id"] for r in rows})[1]
    with screenshot_on_failure(page, tmp_path_factory, "roas-campaign"):
        open_dashboard(page, superset, "ROAS & Performance")
        choose_campaign(page, campaign)
        expected = oracle_headline([r for r in rows if r["campaign_id"] == campaign])
        deadline = time.monotonic() + RENDER_TIMEOUT_S
        while (shown := headline(rendered(page, len(superset_bootstrap.ROAS_CHARTS)))) != expected:
            assert time.monotonic() < deadline, (shown, expected)
            time.sleep(0.5)


def test_pipeline_ops_renders_every_chart(superset, page, tmp_path_factory):
    with screenshot_on_failure(page, tmp_path_factory, "ops"):
        texts = open_dashboard(page, superset, "Pipeline Ops")
        fraud = sum(d == "CLICK_BEFORE_IMPRESSION" for d in superset["expected"].dispositions.values())
        assert texts["Click-before-impression (fraud signal)"].split("\n")[-1].strip() == f"{fraud:,d}"


def test_pipeline_ops_refreshes_itself_the_latency_tile_changes_without_a_reload(superset, page, tmp_path_factory):
    """Superset's periodic dashboard refresh (REFRESH_SECONDS), forced past the cache: the
    latency tile (now - Bronze's latest event) reads a new value with no reload of the page."""
    refresh_s = superset_bootstrap.REFRESH_SECONDS["pipeline-ops"]
    title = "End-to-end latency (s)"
    with screenshot_on_failure(page, tmp_path_factory, "ops-refresh"):
        first = open_dashboard(page, superset, "Pipeline Ops")[title].split("\n")[-1]
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        deadline = time.monotonic() + 4 * refresh_s
        while (now := chart_texts(page)[title].split("\n")[-1]) == first:
            assert time.monotonic() < deadline, f"{title} still reads {first} after {4 * refresh_s}s"
            time.sleep(1)
        assert float(now.replace(",", "")) > float(first.replace(",", "")) and navigations == []


def test_after_a_warm_up_a_dashboards_first_open_is_answered_from_superset_s_cache(superset, settings, page,
                                                                                     tmp_path_factory):
    """The saved query contexts equal what the browser asks for, so the warm-up (the demo's,
    after each rollup refresh) is what a first open reads: every chart's answer is cached."""
    superset_bootstrap.warm(settings, superset["prefix"])
    cached = {}

    def record(response):
        if "/api/v1/chart/data?form_data" in response.url and response.ok:  # a chart's (not a filter's values)
            cached[response.url] = response.json()["result"][0]["is_cached"]

    page.on("response", record)
    with screenshot_on_failure(page, tmp_path_factory, "warm"):
        for dashboard in superset_bootstrap.DASHBOARDS:
            open_dashboard(page, superset, dashboard.title)
    assert len(cached) == sum(len(d.charts) for d in superset_bootstrap.DASHBOARDS), cached
    assert all(cached.values()), [url for url, hit in cached.items() if not hit]


def test_every_chart_answers_through_the_chart_data_api_with_its_saved_query_context(superset, settings):
    """What CSV export, alerts and reports and cache warm-up call: GET /api/v1/chart/ID/data/."""
    client = superset_bootstrap.SupersetClient(settings)
    answered = {}
    for number, title in client.charts(superset["prefix"]).items():
        response = client.session.get(f"{settings.superset_url}/api/v1/chart/{number}/data/", timeout=120)
        assert response.status_code == 200, (title, response.text[:500])
        answered[title] = response.json()["result"][0]
    assert len(answered) == sum(len(d.charts) for d in superset_bootstrap.DASHBOARDS)
    assert all(result["data"] for result in answered.values()), [t for t, r in answered.items() if not r["data"]]
    rows = impressions(superset["expected"])
    assert answered["Revenue"]["data"][0]["revenue"] == pytest.approx(sum(r["revenue"] for r in rows))
    assert answered["Conversions"]["data"][0]["conversions"] == sum(r["is_converted"] for r in rows)


def test_a_tests_dashboards_charts_and_datasets_are_removed_again(superset, settings):
    """Runs last: what the tests imported under their prefix leaves Superset's metadata (a
    developer's Superset is not filled with test dashboards); the demo's are never touched."""
    charts = sum(len(dashboard.charts) for dashboard in superset_bootstrap.DASHBOARDS)
    assert superset_bootstrap.remove(settings, superset["prefix"]) == {
        "dashboards": len(superset_bootstrap.DASHBOARDS), "charts": charts,
        "datasets": len(superset_bootstrap.views_used())}
    assert superset_bootstrap.remove(settings, superset["prefix"]) == {"dashboards": 0, "charts": 0, "datasets": 0}
