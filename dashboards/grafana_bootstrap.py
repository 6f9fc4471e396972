"""The Grafana "Pipeline Ops" dashboard: dashboards/grafana/dashboards/pipeline_ops.json with
the Trino datasource of dashboards/grafana/provisioning/ (the compose profile mounts both,
so Grafana provisions them from files at start).

    python -m dashboards.grafana_bootstrap       (make dashboards runs it)

For a Grafana without file provisioning this script creates or updates the datasource
(by uid) and the dashboard (by uid, overwrite) through grafana-client; a second run changes
nothing but the versions. `expand_macros` reproduces the trino-datasource plugin's macro
expansion, so tests and benchmarks run exactly the SQL the plugin would send.
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from stack.preflight import http_answers
from conf.settings import Settings, get_settings

GRAFANA_DIR = Path(__file__).resolve().parent / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "pipeline_ops.json"
DATASOURCE_UID = "lakehouse-trino"
PLUGIN_ID = "trino-datasource"
MACRO = re.compile(r"\$__(\w+)\(([^()]*)\)")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict:
    return json.loads(path.read_text())


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, raw SQL) for every query of every panel."""
    return [(panel["title"], target["rawSQL"]) for panel in dashboard["panels"] for target in panel["targets"]]


def _interval_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip().strip("'"))
    if not match:
        raise ValueError(f"unsupported interval {text!r}")
    return float(match.group(1)) * INTERVAL_SECONDS[match.group(2)]


def _number(value: float) -> str:
    return str(int(value)) if math.isclose(value, round(value)) else repr(value)


def expand_macros(sql: str, time_from: datetime, time_to: datetime) -> str:
    """The SQL the trino-datasource plugin sends for a time range (pkg/trino/macros.go):
    literals are UTC wall-clock times without a zone."""
    stamp = "%Y-%m-%d %H:%M:%S"
    start, end = (t.astimezone(timezone.utc).strftime(stamp) for t in (time_from, time_to))

    def replace(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
        if name == "timeFilter":
            return f"{args[0]} BETWEEN TIMESTAMP '{start}' AND TIMESTAMP '{end}'"
        if name == "timeFrom":
            return f"TIMESTAMP '{start}'"
        if name == "timeTo":
            return f"TIMESTAMP '{end}'"
        if name == "dateFilter":
            return f"{args[0]} BETWEEN date '{start[:10]}' AND date '{end[:10]}'"
        if name == "timeGroup":
            seconds = _number(_interval_seconds(args[1]))
            return f"FROM_UNIXTIME(FLOOR(TO_UNIXTIME({args[0]})/{seconds})*{seconds})"
        raise ValueError(f"macro $__{name} is not one the trino-datasource plugin knows")

    return MACRO.sub(replace, sql)


# --- request bodies (pure)

def datasource_payload(settings: Settings) -> dict:
    return {"name": "Trino", "uid": DATASOURCE_UID, "type": PLUGIN_ID, "access": "proxy",
            "url": f"http://{settings.bi_trino_host}:{settings.bi_trino_port}", "isDefault": True, "jsonData": {}}


def dashboard_payload(dashboard: dict, folder_uid: str | None = None) -> dict:
    body = {k: v for k, v in dashboard.items() if k not in ("id", "version")}
    payload = {"dashboard": body, "overwrite": True, "message": "dashboards/grafana_bootstrap.py"}
    if folder_uid:
        payload["folderUid"] = folder_uid
    return payload


FOLDER = {"uid": "attribution-lakehouse", "title": "Attribution Lakehouse"}


# --- calls

def bootstrap(api, settings: Settings, dashboard: dict | None = None) -> list[str]:
    """Create-or-update the datasource, folder and dashboard through a grafana-client GrafanaApi."""
    from grafana_client.client import GrafanaClientError

    actions = []
    body = datasource_payload(settings)
    try:
        existing = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, {**body, "id": existing["id"]})
        actions.append("updated datasource Trino")
    except GrafanaClientError as error:
        if error.status_code != 404:
            raise
        api.datasource.create_datasource(body)
        actions.append("created datasource Trino")
    try:
        api.folder.get_folder(FOLDER["uid"])
    except GrafanaClientError as error:
        if error.status_code != 404:
            raise
        api.folder.create_folder(FOLDER["title"], uid=FOLDER["uid"])
        actions.append(f"created folder {FOLDER['title']}")
    dashboard = dashboard or load_dashboard()
    api.dashboard.update_dashboard(dashboard_payload(dashboard, FOLDER["uid"]))
    actions.append(f"saved dashboard {dashboard['title']!r} (uid {dashboard['uid']})")
    return actions


def main() -> int:
    settings = get_settings()
    if not http_answers(f"{settings.grafana_url}/api/health"):
        print(f"grafana: skipped — not reachable at {settings.grafana_url} (GRAFANA_URL); it runs in the "
              "compose profile (`make up`, which provisions it from dashboards/grafana/), it cannot be "
              "installed on the local stack")
        return 0
    from grafana_client import GrafanaApi

    api = GrafanaApi.from_url(settings.grafana_url, credential=(settings.grafana_admin_user,
                                                                settings.grafana_admin_password))
    for action in bootstrap(api, settings):
        print(f"grafana: {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
