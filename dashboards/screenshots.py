"""`make screenshots`: PNGs of the Superset dashboards, taken from the real pages in
headless chromium (Playwright), for the README (docs/img/). Needs the stack with Superset
and data in Gold: run `make demo` first."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from conf.settings import REPO_ROOT, get_settings
from dashboards.superset_bootstrap import DASHBOARDS, dashboard_urls

IMAGE_DIR = REPO_ROOT / "docs" / "img"
RENDER_TIMEOUT_S = 120


def wait_rendered(page, charts: int) -> None:
    """Until every chart shows a number, a canvas or a table, or an error."""
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    locator = page.locator("[data-test='chart-grid-component']")
    while time.monotonic() < deadline:
        done = sum(1 for i in range(locator.count())
                   if locator.nth(i).locator(".header-line, canvas, table, .ant-alert-error").count())
        if locator.count() == charts and done == charts:
            time.sleep(1.5)  # ECharts animates its first draw
            return
        time.sleep(0.5)
    raise TimeoutError(f"dashboard not rendered in {RENDER_TIMEOUT_S}s")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m dashboards.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--table-prefix", default=settings.table_namespace_prefix)
    parser.add_argument("--out", type=Path, default=IMAGE_DIR)
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("error: no chromium on PATH: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    urls = dashboard_urls(settings, args.table_prefix)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        page.goto(f"{settings.superset_url}/login/")
        page.fill("#username", settings.superset_admin_user)
        page.fill("#password", settings.superset_admin_password)
        page.click("[type=submit]")
        page.wait_for_load_state("networkidle")
        for dashboard in DASHBOARDS:
            page.goto(urls[dashboard.title] + "?standalone=1")  # the dashboard without Superset's navigation
            wait_rendered(page, len(dashboard.charts))
            target = args.out / f"superset-{dashboard.slug}.png"
            page.screenshot(path=str(target), full_page=True)
            print(f"{target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}: "
                  f"{target.stat().st_size / 1024:.0f} KB")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
