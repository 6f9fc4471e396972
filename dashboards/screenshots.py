"""`make screenshots`: PNGs of the Superset dashboards, taken from the real pages in
headless chromium (Playwright), and of the path-analysis notebook's charts, from a headless
run that also leaves its outputs in the committed notebook; for the README (docs/img/).
Needs the stack with Superset and data in Gold: run `make demo` first."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from conf.settings import REPO_ROOT, get_settings
from dashboards import notebook as path_analysis
from dashboards.superset_bootstrap import DASHBOARDS, dashboard_urls
from dashboards.superset_page import log_in, wait_finished

IMAGE_DIR = REPO_ROOT / "docs" / "img"


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
        log_in(page, settings)
        for dashboard in DASHBOARDS:
            page.goto(urls[dashboard.title] + "?standalone=1")  # the dashboard without Superset's navigation
            wait_finished(page, len(dashboard.charts))
            # The window as tall as the dashboard, then the charts once more: a full-page
            # capture resizes the window itself, and Superset, laying its grid out again,
            # was caught empty.
            page.set_viewport_size({"width": 1440, "height": page.evaluate("document.documentElement.scrollHeight")})
            if failed := {name: state for name, state in wait_finished(page, len(dashboard.charts)).items()
                          if state != "rendered"}:
                sys.exit(f"error: {dashboard.title}: {failed}")
            time.sleep(2)  # ECharts animates its first draw
            target = args.out / f"superset-{dashboard.slug}.png"
            page.screenshot(path=str(target))
            page.set_viewport_size({"width": 1440, "height": 900})
            print(f"{target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}: "
                  f"{target.stat().st_size / 1024:.0f} KB")
        browser.close()
    notebook = path_analysis.execute(args.table_prefix)
    if errors := [o for o in path_analysis.outputs(notebook) if o.output_type == "error"]:
        sys.exit(f"error: the notebook failed: {errors[0].get('evalue')}")
    path_analysis.save(notebook)
    for slug, png in path_analysis.charts(notebook).items():
        target = args.out / f"notebook-{slug}.png"
        target.write_bytes(png)
        print(f"{target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}: {len(png) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
