"""The dashboards as code, without servers: the Metabase spec and the Grafana dashboard
validate (shape, datasource references, every card and panel has a query, layouts fit the
grid), the request bodies the bootstraps send are what Metabase's and Grafana's APIs take,
the Metabase bootstrap converges (run twice: one of each), and the Grafana macro expansion
matches the trino-datasource plugin's. Metabase and Grafana servers cannot be installed on
this machine, so the bootstraps never meet a live server in the test suite; the SQL of every
card and panel runs on the real Trino in tests/integration/test_dashboards.py."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import jsonschema
import pytest
import yaml

from conf.settings import REPO_ROOT, Settings
from dashboards import grafana_bootstrap, metabase_bootstrap
from dashboards.trino_views import VIEWS, qualify, render

SPEC = metabase_bootstrap.load_spec()
DASHBOARD = grafana_bootstrap.load_dashboard()
VIEW_NAMES = {f"lakehouse.{view.namespace}.{view.name}" for view in VIEWS}

METABASE_SPEC_SCHEMA = {
    "type": "object",
    "required": ["collection", "database", "dashboard"],
    "properties": {
        "database": {"type": "object", "required": ["name", "engine"],
                     "properties": {"engine": {"const": "starburst"}}},
        "dashboard": {
            "type": "object", "required": ["name", "parameters", "cards"],
            "properties": {
                "parameters": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["slug", "name", "type", "tag_type"],
                    "properties": {"tag_type": {"enum": ["date", "text", "number"]}}}},
                "cards": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["key", "name", "sql", "display", "visualization_settings", "layout"],
                    "properties": {
                        "display": {"enum": ["table", "scalar", "line", "bar", "pie", "row", "area"]},
                        "layout": {"type": "object", "required": ["row", "col", "size_x", "size_y"]}}}},
            },
        },
    },
}


def test_metabase_spec_validates():
    import json

    raw = json.loads((REPO_ROOT / "dashboards" / "metabase" / "roas_dashboard.json").read_text())
    jsonschema.validate(raw, METABASE_SPEC_SCHEMA)
    assert len({card["key"] for card in raw["dashboard"]["cards"]}) == len(raw["dashboard"]["cards"])


def test_every_card_is_a_query_over_the_views_with_known_filters():
    slugs = {p["slug"] for p in SPEC["dashboard"]["parameters"]}
    for card in SPEC["dashboard"]["cards"]:
        assert card.sql.lstrip().upper().startswith("SELECT"), card.key
        tables = set(re.findall(r"\blakehouse\.\w+\.\w+", card.sql))
        assert tables and tables <= VIEW_NAMES, (card.key, tables)  # BI reads the views, not raw tables
        assert set(metabase_bootstrap.tags_of(card.sql)) <= slugs
        assert "${" not in card.sql  # file templates filled in


def test_cards_views_and_demo_share_one_definition_of_each_measure():
    """ROAS, CTR and CVR are ratios of sums, written once (conf/measures.py): every card that
    shows revenue, every performance view and `make demo` define them with the same text,
    so no two can disagree, and no other source file spells one out."""
    from conf.measures import RATIOS
    from conf.settings import REPO_ROOT
    from dashboards import trino_views
    from jobs import demo

    ratios = [f"{expression} AS {name}" for name, expression in RATIOS]
    measure_cards = [card for card in SPEC["dashboard"]["cards"] if "sum(revenue)" in card.sql]
    assert {card.key for card in measure_cards} >= {"totals", "daily_trend", "by_campaign", "top_creatives"}
    views = [trino_views.select_sql(name) for name in trino_views.view_names() if name.endswith("performance_daily")]
    demo_sql = demo.ROAS_SQL.format(sums=demo.sums_sql(), ratios=demo.ratios_sql(), performance_rollup="t")
    assert len(views) == 4
    for sql in [*(card.sql for card in measure_cards), *views, demo_sql]:
        assert all(sql.count(ratio) == 1 for ratio in ratios), sql
        assert "avg(" not in sql.lower(), sql  # never an average of ratios
    spelled_out = [str(path.relative_to(REPO_ROOT)) for folder in ("dashboards", "jobs", "conf")
                   for path in (REPO_ROOT / folder).rglob("*") if path.suffix in (".py", ".sql", ".json")
                   and "nullif(sum(cost)" in path.read_text()]
    assert spelled_out == ["conf/measures.py"]


def test_every_filter_reaches_every_card_and_the_layout_fits_without_overlap():
    taken = set()
    for card in SPEC["dashboard"]["cards"]:
        assert set(metabase_bootstrap.tags_of(card.sql)) == {"start_date", "end_date", "campaign"}, card.key
        layout = card.layout
        assert layout["col"] + layout["size_x"] <= 24  # Metabase's grid is 24 columns wide
        cells = {(layout["row"] + r, layout["col"] + c) for r in range(layout["size_y"]) for c in range(layout["size_x"])}
        assert not cells & taken, card.key
        taken |= cells


def test_metabase_filter_expansion():
    parameters = SPEC["dashboard"]["parameters"]
    sql = "SELECT 1 WHERE 1 = 1 [[AND day >= {{start_date}}]] [[AND campaign_id = {{ campaign }}]]"
    assert metabase_bootstrap.expand(sql, {}, parameters) == "SELECT 1 WHERE 1 = 1  "
    assert metabase_bootstrap.expand(sql, {"start_date": "2026-01-05", "campaign": "o'neil"}, parameters) == (
        "SELECT 1 WHERE 1 = 1 AND day >= DATE '2026-01-05' AND campaign_id = 'o''neil'")
    with pytest.raises(ValueError, match="campaign"):
        metabase_bootstrap.expand("SELECT {{campaign}}", {}, parameters)


def test_card_payload_is_a_native_query_with_template_tags_and_the_prefix_applied():
    card = next(c for c in SPEC["dashboard"]["cards"] if c.key == "by_campaign")
    body = metabase_bootstrap.card_payload(card, SPEC["dashboard"]["parameters"], database_id=7, collection_id=3,
                                           prefix="staging_")
    query = body["dataset_query"]
    assert (query["type"], query["database"], body["collection_id"]) == ("native", 7, 3)
    assert "lakehouse.staging_gold.campaign_performance_daily" in query["native"]["query"]
    tags = query["native"]["template-tags"]
    assert set(tags) == {"start_date", "end_date", "campaign"}
    assert tags["start_date"]["type"] == "date" and tags["campaign"]["type"] == "text"
    again = metabase_bootstrap.card_payload(card, SPEC["dashboard"]["parameters"], 7, 3, "staging_")
    assert again == body  # stable tag ids: an update does not break dashboard filter mappings


def test_setup_and_database_payloads_come_from_settings():
    settings = Settings(metabase_admin_email="ops@example.com", metabase_admin_password="S3cret-pass",
                        bi_trino_host="trino.internal", bi_trino_port=8443)
    setup = metabase_bootstrap.setup_payload("token-1", settings)
    assert setup["token"] == "token-1" and setup["user"]["email"] == "ops@example.com"
    assert setup["user"]["password"] == "S3cret-pass"
    database = metabase_bootstrap.database_payload(SPEC, settings)
    assert database["engine"] == "starburst"
    assert database["details"]["host"] == "trino.internal" and database["details"]["port"] == 8443
    assert database["details"]["catalog"] == "lakehouse"


def test_dashcards_wire_each_filter_to_the_cards_tag():
    cards = SPEC["dashboard"]["cards"]
    ids = {card.key: index + 100 for index, card in enumerate(cards)}
    dashcards = metabase_bootstrap.dashcards_payload(cards, ids, SPEC["dashboard"]["parameters"])
    assert [d["card_id"] for d in dashcards] == [ids[c.key] for c in cards]
    for dashcard in dashcards:
        assert {m["parameter_id"] for m in dashcard["parameter_mappings"]} == {"start_date", "end_date", "campaign"}
        assert all(m["target"] == ["variable", ["template-tag", m["parameter_id"]]] for m in dashcard["parameter_mappings"])


class Response:
    def __init__(self, status: int, body) -> None:
        self.status_code, self.ok, self._body, self.text = status, status < 400, body, str(body)

    def json(self):
        return self._body


class RecordingMetabase:
    """The few Metabase endpoints the bootstrap uses, kept in memory: it lets the test run
    the bootstrap twice and count what exists. It is not Metabase; see the module note."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[int, dict]] = {"database": {}, "collection": {}, "card": {}, "dashboard": {}}
        self.next_id = 1
        self.dashcards: dict[int, list] = {}

    def get(self, endpoint: str, *args, **kwargs):
        if endpoint == "/api/database":
            return {"data": list(self.objects["database"].values())}
        if endpoint == "/api/collection":
            return list(self.objects["collection"].values())
        match = re.fullmatch(r"/api/collection/(\d+)/items", endpoint)
        if match:
            collection = int(match.group(1))
            return {"data": [{**o, "model": kind} for kind in ("card", "dashboard")
                             for o in self.objects[kind].values() if o.get("collection_id") == collection]}
        raise AssertionError(f"unexpected GET {endpoint}")

    def post(self, endpoint: str, *args, json=None, **kwargs):
        kind = endpoint.rsplit("/", 1)[1]
        object_id, self.next_id = self.next_id, self.next_id + 1
        self.objects[kind][object_id] = {**json, "id": object_id}
        return Response(200, {"id": object_id})

    def put(self, endpoint: str, *args, json=None, **kwargs):
        _, _, kind, object_id = endpoint.split("/")
        if "dashcards" in json:
            assert all(d["card_id"] in self.objects["card"] for d in json["dashcards"])
            self.dashcards[int(object_id)] = json["dashcards"]
        else:
            self.objects[kind][int(object_id)].update(json)
        return Response(200, {})


def test_metabase_bootstrap_run_twice_leaves_one_of_each():
    server, settings = RecordingMetabase(), Settings()
    first = metabase_bootstrap.Bootstrap(server, SPEC, settings).run()
    assert sum(a.startswith("created") for a in first) == 3 + len(SPEC["dashboard"]["cards"])
    second = metabase_bootstrap.Bootstrap(server, SPEC, settings).run()
    assert all(a.startswith("updated") for a in second)
    counts = {kind: len(objects) for kind, objects in server.objects.items()}
    assert counts == {"database": 1, "collection": 1, "card": len(SPEC["dashboard"]["cards"]), "dashboard": 1}
    (dashcards,) = server.dashcards.values()
    assert len(dashcards) == len(SPEC["dashboard"]["cards"])


# --- Grafana

def test_grafana_dashboard_panels_query_the_provisioned_trino_datasource():
    provisioned = yaml.safe_load((REPO_ROOT / "dashboards" / "grafana" / "provisioning" / "datasources"
                                  / "trino.yaml").read_text())
    (datasource,) = provisioned["datasources"]
    assert (datasource["uid"], datasource["type"]) == (grafana_bootstrap.DATASOURCE_UID, grafana_bootstrap.PLUGIN_ID)
    assert DASHBOARD["title"] == "Pipeline Ops" and DASHBOARD["uid"]
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"] == {"type": "trino-datasource", "uid": datasource["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["rawSQL"].lstrip().upper().startswith("SELECT")
            assert target["format"] in (0, 1)  # time series, table
            assert set(re.findall(r"\blakehouse\.\w+\.\w+", target["rawSQL"])) <= VIEW_NAMES
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_grafana_dashboard_covers_latency_freshness_lag_throughput_and_audit():
    sql = " ".join(q for _, q in grafana_bootstrap.panel_queries(DASHBOARD))
    for needle in ("end_to_end_latency_seconds", "gold_freshness_seconds", "stream_partition_lag",
                   "processed_rows_per_second", "batch_duration_seconds", "audit_reasons_hourly",
                   "CLICK_BEFORE_IMPRESSION"):
        assert needle in sql
    assert any("$__timeFilter" in q for _, q in grafana_bootstrap.panel_queries(DASHBOARD))


def test_grafana_macros_expand_as_the_trino_plugin_does():
    start = datetime(2026, 1, 5, 10, 0, 0, tzinfo=timezone.utc)
    end = datetime(2026, 1, 5, 13, 30, 15, tzinfo=timezone.utc)
    expand = grafana_bootstrap.expand_macros
    assert expand("WHERE $__timeFilter(hour)", start, end) == (
        "WHERE hour BETWEEN TIMESTAMP '2026-01-05 10:00:00' AND TIMESTAMP '2026-01-05 13:30:15'")
    assert expand("$__timeGroup(hour, '1h')", start, end) == "FROM_UNIXTIME(FLOOR(TO_UNIXTIME(hour)/3600)*3600)"
    assert expand("$__timeGroup(t, '5m')", start, end) == "FROM_UNIXTIME(FLOOR(TO_UNIXTIME(t)/300)*300)"
    assert expand("$__timeFrom() $__timeTo()", start, end) == (
        "TIMESTAMP '2026-01-05 10:00:00' TIMESTAMP '2026-01-05 13:30:15'")
    assert expand("$__dateFilter(day)", start, end) == "day BETWEEN date '2026-01-05' AND date '2026-01-05'"
    other_zone = datetime(2026, 1, 5, 11, 0, tzinfo=timezone.utc).astimezone()
    assert "TIMESTAMP '2026-01-05 11:00:00'" in expand("$__timeFrom()", other_zone, end)  # always UTC
    with pytest.raises(ValueError, match="unixEpochNanoFilter"):
        expand("$__unixEpochNanoFilter(t)", start, end)


def test_grafana_bootstrap_payloads():
    settings = Settings(bi_trino_host="trino", bi_trino_port=8080)
    assert grafana_bootstrap.datasource_payload(settings) == {
        "name": "Trino", "uid": "lakehouse-trino", "type": "trino-datasource", "access": "proxy",
        "url": "http://trino:8080", "isDefault": True, "jsonData": {}}
    payload = grafana_bootstrap.dashboard_payload({**DASHBOARD, "id": 12, "version": 3}, "folder-1")
    assert payload["overwrite"] is True and payload["folderUid"] == "folder-1"
    assert "id" not in payload["dashboard"] and payload["dashboard"]["uid"] == DASHBOARD["uid"]


def test_views_render_with_prefix_and_every_placeholder_filled():
    for view in VIEWS:
        sql = render(view.name, "p_")
        assert sql.startswith(f"CREATE OR REPLACE VIEW lakehouse.p_{view.namespace}.{view.name} AS")
        assert "{" not in sql and "lakehouse.gold." not in sql
    assert qualify("FROM lakehouse.ops.stream_batches JOIN lakehouse.gold.x", "p_") == (
        "FROM lakehouse.p_ops.stream_batches JOIN lakehouse.p_gold.x")
