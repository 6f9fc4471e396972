"""A Superset dashboard page as a browser sees it, read one way by `make screenshots` and by
the browser tests: logging in, and the state of each chart. Playwright drives the page."""

from __future__ import annotations

import re
import time

from conf.settings import Settings

CHART = "[data-test='chart-grid-component']"  # one per chart; its title is data-test-chart-name
DRAWN = ".header-line, canvas, table"  # a big number, an ECharts canvas, a table
FAILED = ".ant-alert-error"
RENDER_TIMEOUT_S = 120


def log_in(page, settings: Settings, attempts: int = 3) -> None:
    """Log the page's browser context in by posting Superset's login form (with its CSRF
    token) from the context itself, so the session cookie lands in the browser. Filling the
    React login page instead raced its start now and then: a click before the page's client
    had its CSRF token posted nothing and left the browser on /login/."""
    base, request = settings.superset_url, page.context.request
    for _ in range(attempts):
        token = re.search(r'id="csrf_token"\s+value="([^"]+)"', request.get(f"{base}/login/", timeout=60_000).text())
        if token:
            request.post(f"{base}/login/", timeout=60_000, form={
                "username": settings.superset_admin_user, "password": settings.superset_admin_password,
                "csrf_token": token.group(1)})
            if request.get(f"{base}/api/v1/me/", timeout=60_000).ok:
                return
        time.sleep(2)
    raise RuntimeError(f"could not log in to Superset at {base} as {settings.superset_admin_user!r}: check "
                       "SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD in .env and .stack/logs/superset.log")


def chart_states(page) -> dict[str, str]:
    """{chart title: "rendered" | "no data" | "error: <message>"} for every chart that has
    finished (still loading: absent)."""
    charts, states = page.locator(CHART), {}
    for index in range(charts.count()):
        chart = charts.nth(index)
        name = chart.get_attribute("data-test-chart-name")
        if chart.locator(FAILED).count():
            states[name] = "error: " + chart.locator(FAILED).first.inner_text()
        elif chart.locator(DRAWN).count():
            states[name] = "rendered"
        elif "No results" in chart.inner_text():
            states[name] = "no data"
    return states


def wait_finished(page, expected_charts: int, timeout_s: float = RENDER_TIMEOUT_S) -> dict[str, str]:
    """chart_states once all `expected_charts` charts have finished; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = chart_states(page)
        if len(states) == expected_charts == page.locator(CHART).count():
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(states)} of {expected_charts} charts finished in {timeout_s:.0f}s: {states}")
        time.sleep(0.5)


def chart_texts(page) -> dict[str, str]:
    charts = page.locator(CHART)
    return {charts.nth(i).get_attribute("data-test-chart-name"): charts.nth(i).inner_text()
            for i in range(charts.count())}
