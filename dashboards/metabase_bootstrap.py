"""The Metabase "ROAS & Performance" dashboard as code: dashboards/metabase/roas_dashboard.json
(cards, layout, filters) with native Trino SQL in dashboards/metabase/cards/*.sql.

    python -m dashboards.metabase_bootstrap      (make dashboards runs it)

Against a live Metabase (the compose profile, port 3030) it completes first-run setup
from METABASE_ADMIN_EMAIL / METABASE_ADMIN_PASSWORD, registers Trino through Metabase's
bundled Starburst driver, and creates or updates the collection, the cards and the
dashboard by name: a second run updates in place and leaves one of each. Metabase OSS has
no file provisioning, so this REST bootstrap is the only way in.

Request bodies are built by pure functions (unit-tested); `Bootstrap` does the calls
through metabase-api.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from stack.preflight import http_answers
from conf.measures import view_measures_sql
from conf.settings import CATALOG_NAME, Settings, get_settings
from dashboards.trino_views import qualify

SPEC_DIR = Path(__file__).resolve().parent / "metabase"
TAG = re.compile(r"\{\{\s*(\w+)\s*\}\}")
OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)


@dataclass(frozen=True)
class Card:
    key: str
    name: str
    sql: str  # native SQL with Metabase {{tags}} and [[optional clauses]], default table names
    display: str
    visualization_settings: dict
    layout: dict


def _sql_text(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))


def load_spec(path: Path = SPEC_DIR / "roas_dashboard.json") -> dict:
    """The spec with every card's SQL read, its file template filled in and the shared
    measures (conf/measures.py) put in place of ${measures}."""
    spec = json.loads(path.read_text())
    measures = view_measures_sql()
    cards = []
    for card in spec["dashboard"]["cards"]:
        text = _sql_text(path.parent / "cards" / card["sql"])
        sql = Template(text).substitute({"measures": measures, **card.get("template", {})}).strip()
        cards.append(Card(card["key"], card["name"], sql, card["display"], card["visualization_settings"],
                          card["layout"]))
    spec["dashboard"]["cards"] = cards
    return spec


def tags_of(sql: str) -> list[str]:
    return list(dict.fromkeys(TAG.findall(sql)))


def expand(sql: str, values: dict[str, object], parameters: list[dict]) -> str:
    """The SQL Metabase runs for a card given filter values: an optional [[clause]] stays
    only when all its tags have a value; a date becomes DATE 'yyyy-mm-dd', text a quoted
    string. (Metabase binds them as JDBC parameters; the effect is the same.)"""
    kinds = {p["slug"]: p["tag_type"] for p in parameters}

    def literal(name: str) -> str:
        value = values[name]
        if kinds[name] == "date":
            return f"DATE '{value}'"
        return "'" + str(value).replace("'", "''") + "'"

    def optional(match: re.Match[str]) -> str:
        clause = match.group(1)
        return TAG.sub(lambda m: literal(m.group(1)), clause) if all(
            values.get(t) is not None for t in tags_of(clause)) else ""

    text = OPTIONAL.sub(optional, sql)
    missing = [t for t in tags_of(text) if values.get(t) is None]
    if missing:
        raise ValueError(f"required filter without a value: {', '.join(missing)}")
    return TAG.sub(lambda m: literal(m.group(1)), text)


# --- request bodies (pure)

def setup_payload(token: str, settings: Settings) -> dict:
    return {
        "token": token,
        "user": {"email": settings.metabase_admin_email, "password": settings.metabase_admin_password,
                 "first_name": "Lakehouse", "last_name": "Admin", "site_name": "Attribution Lakehouse"},
        "prefs": {"site_name": "Attribution Lakehouse", "site_locale": "en", "allow_tracking": False},
    }


def database_payload(spec: dict, settings: Settings) -> dict:
    return {
        "name": spec["database"]["name"],
        "engine": spec["database"]["engine"],  # Metabase >= 54 bundles Starburst; it serves Trino
        "details": {"host": settings.bi_trino_host, "port": settings.bi_trino_port, "catalog": CATALOG_NAME,
                    "user": "metabase", "ssl": False, "impersonation": False},
        "is_full_sync": False,  # native SQL only: no need to scan the warehouse
    }


def template_tags(sql: str, parameters: list[dict]) -> dict:
    by_slug = {p["slug"]: p for p in parameters}
    tags = {}
    for name in tags_of(sql):
        parameter = by_slug[name]
        # A stable id per tag name keeps updates from churning dashboard mappings.
        tags[name] = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakehouse/{name}")), "name": name,
                      "display-name": parameter["name"], "type": parameter["tag_type"], "required": False}
    return tags


def card_payload(card: Card, parameters: list[dict], database_id: int, collection_id: int, prefix: str) -> dict:
    sql = qualify(card.sql, prefix)
    return {
        "name": card.name,
        "display": card.display,
        "collection_id": collection_id,
        "visualization_settings": card.visualization_settings,
        "dataset_query": {"type": "native", "database": database_id,
                          "native": {"query": sql, "template-tags": template_tags(sql, parameters)}},
    }


def dashboard_parameters(parameters: list[dict]) -> list[dict]:
    return [{"id": p["slug"], "slug": p["slug"], "name": p["name"], "type": p["type"]} for p in parameters]


def dashcards_payload(cards: list[Card], card_ids: dict[str, int], parameters: list[dict]) -> list[dict]:
    """Dashboard cards with layout and filter wiring; negative ids ask Metabase to create."""
    dashcards = []
    for index, card in enumerate(cards):
        mappings = [{"parameter_id": p["slug"], "card_id": card_ids[card.key],
                     "target": ["variable", ["template-tag", p["slug"]]]}
                    for p in parameters if p["slug"] in tags_of(card.sql)]
        dashcards.append({"id": -(index + 1), "card_id": card_ids[card.key], **card.layout,
                          "parameter_mappings": mappings})
    return dashcards


# --- calls

class Bootstrap:
    """Create-or-update by name through a metabase-api client (anything with get/post/put)."""

    def __init__(self, api, spec: dict, settings: Settings) -> None:
        self.api, self.spec, self.settings = api, spec, settings
        self.actions: list[str] = []

    def _upsert(self, kind: str, endpoint: str, existing: dict | None, body: dict) -> int:
        if existing:
            response = self.api.put(f"{endpoint}/{existing['id']}", "raw", json=body)
            _check(response, f"update {kind} {body['name']!r}")
            self.actions.append(f"updated {kind} {body['name']!r}")
            return existing["id"]
        response = self.api.post(endpoint, "raw", json=body)
        _check(response, f"create {kind} {body['name']!r}")
        self.actions.append(f"created {kind} {body['name']!r}")
        return response.json()["id"]

    def database(self) -> int:
        body = database_payload(self.spec, self.settings)
        listed = self.api.get("/api/database")
        databases = listed["data"] if isinstance(listed, dict) else listed or []
        return self._upsert("database", "/api/database", _named(databases, body["name"]), body)

    def collection(self) -> int:
        body = {"name": self.spec["collection"]["name"], "description": self.spec["collection"]["description"]}
        collections = [c for c in self.api.get("/api/collection") or [] if not c.get("archived")]
        return self._upsert("collection", "/api/collection", _named(collections, body["name"]), body)

    def run(self) -> list[str]:
        database_id, collection_id = self.database(), self.collection()
        dashboard = self.spec["dashboard"]
        items = self.api.get(f"/api/collection/{collection_id}/items") or {}
        items = items.get("data", []) if isinstance(items, dict) else items
        cards = [i for i in items if i.get("model") == "card"]
        card_ids = {}
        for card in dashboard["cards"]:
            body = card_payload(card, dashboard["parameters"], database_id, collection_id,
                                self.settings.table_namespace_prefix)
            card_ids[card.key] = self._upsert("card", "/api/card", _named(cards, card.name), body)
        boards = [i for i in items if i.get("model") == "dashboard"]
        body = {"name": dashboard["name"], "description": dashboard["description"], "collection_id": collection_id,
                "parameters": dashboard_parameters(dashboard["parameters"])}
        dashboard_id = self._upsert("dashboard", "/api/dashboard", _named(boards, dashboard["name"]), body)
        # Replacing the dashcards in one PUT makes a re-run converge instead of adding copies.
        response = self.api.put(f"/api/dashboard/{dashboard_id}", "raw", json={
            "dashcards": dashcards_payload(dashboard["cards"], card_ids, dashboard["parameters"]),
            "parameters": dashboard_parameters(dashboard["parameters"])})
        _check(response, "lay out the dashboard")
        return self.actions


def _named(items: list[dict], name: str) -> dict | None:
    return next((item for item in items if item.get("name") == name), None)


def _check(response, what: str) -> None:
    if not response.ok:
        raise RuntimeError(f"metabase: could not {what}: HTTP {response.status_code} {response.text[:300]}")


def first_run_setup(settings: Settings) -> bool:
    """Complete Metabase's setup wizard once (creates the admin); False if already done."""
    import requests

    properties = requests.get(f"{settings.metabase_url}/api/session/properties", timeout=10).json()
    if properties.get("has-user-setup"):
        return False
    response = requests.post(f"{settings.metabase_url}/api/setup",
                             json=setup_payload(properties["setup-token"], settings), timeout=30)
    _check(response, "complete first-run setup")
    return True


def main() -> int:
    settings = get_settings()
    if not http_answers(f"{settings.metabase_url}/api/health"):
        print(f"metabase: skipped — not reachable at {settings.metabase_url} (METABASE_URL); it runs in the "
              "compose profile (`make up`), it cannot be installed on the local stack")
        return 0
    from metabase_api import Metabase_API

    if first_run_setup(settings):
        print(f"metabase: first-run setup done, admin {settings.metabase_admin_email}")
    api = Metabase_API(settings.metabase_url, settings.metabase_admin_email, settings.metabase_admin_password)
    for action in Bootstrap(api, load_spec(), settings).run():
        print(f"metabase: {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
