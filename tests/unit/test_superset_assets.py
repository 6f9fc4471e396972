"""Superset's dashboards as code, without a server: the import bundle holds one dataset per
Trino view the charts read, the performance datasets' metrics are the shared measures, and
Superset, Metabase and Grafana read the same views (so the three cannot drift). The bundle
meets a live Superset in tests/integration/test_superset.py."""

from __future__ import annotations

import io
import json
import re
import zipfile

from conf.measures import view_measures
from conf.settings import Settings
from dashboards import grafana_bootstrap, metabase_bootstrap, superset_bootstrap as superset
from dashboards.trino_views import BY_NAME

VIEW_REFERENCE = re.compile(r"lakehouse\.(?:gold|ops)\.(\w+)")


def unpack(prefix: str = "") -> dict[str, dict]:
    columns = {view: [("day", "date"), ("campaign_id", "varchar")] for view in superset.views_used()}
    archive = zipfile.ZipFile(io.BytesIO(superset.bundle(Settings(), prefix, columns)))
    return {name.split("/", 1)[1]: json.loads(archive.read(name)) for name in archive.namelist()}


def dashboard_views(title: str) -> set[str]:
    dashboard = next(d for d in superset.DASHBOARDS if d.title == title)
    return {chart.view for chart in dashboard.charts}


def test_superset_roas_reads_the_views_the_metabase_cards_read():
    metabase = {view for card in metabase_bootstrap.load_spec()["dashboard"]["cards"]
                for view in VIEW_REFERENCE.findall(card.sql)}
    assert dashboard_views("ROAS & Performance") == metabase


def test_superset_pipeline_ops_reads_the_views_the_grafana_panels_read():
    grafana = {view for _, sql in grafana_bootstrap.panel_queries(grafana_bootstrap.load_dashboard())
               for view in VIEW_REFERENCE.findall(sql)}
    assert dashboard_views("Pipeline Ops") == grafana


def test_performance_datasets_declare_the_shared_measures_and_charts_use_only_those():
    files = unpack()
    datasets = {f["table_name"]: f for path, f in files.items() if path.startswith("datasets/")}
    assert set(datasets) == superset.views_used() and all(view in BY_NAME for view in datasets)
    for view in superset.PERFORMANCE_VIEWS:
        assert [(m["metric_name"], m["expression"]) for m in datasets[view]["metrics"]] == view_measures()
    names = {name for name, _ in view_measures()}
    for path, chart in files.items():
        if path.startswith("charts/") and chart["dataset_uuid"] in {
                superset.asset_uuid("dataset", "", view) for view in superset.PERFORMANCE_VIEWS}:
            params = chart["params"]
            used = params.get("metrics", []) + ([params["metric"]] if "metric" in params else [])
            assert used and all(isinstance(m, str) and m in names for m in used), path  # no ratio spelled out here


def test_every_chart_is_placed_and_every_reference_resolves():
    files = unpack()
    datasets = {f["uuid"] for path, f in files.items() if path.startswith("datasets/")}
    charts = {f["uuid"] for path, f in files.items() if path.startswith("charts/")}
    assert all(files[p]["dataset_uuid"] in datasets for p in files if p.startswith("charts/"))
    placed = [node["meta"]["uuid"] for p in files if p.startswith("dashboards/")
              for key, node in files[p]["position"].items() if key.startswith("CHART-")]
    assert sorted(placed) == sorted(charts)
    for p in files:
        if p.startswith("dashboards/"):
            for row in (n for k, n in files[p]["position"].items() if k.startswith("ROW-")):
                assert sum(files[p]["position"][c]["meta"]["width"] for c in row["children"]) <= 12, (p, row["id"])


def test_the_same_prefix_gives_the_same_uuids_and_another_prefix_other_ones():
    first, again, other = unpack("demo_"), unpack("demo_"), unpack("test_")
    uuids = lambda files: {f["uuid"] for p, f in files.items() if "uuid" in f and not p.startswith("databases/")}  # noqa: E731
    assert uuids(first) == uuids(again) and not uuids(first) & uuids(other)
    assert {f["schema"] for p, f in first.items() if p.startswith("datasets/")} == {"demo_gold", "demo_ops"}


def load_superset_config(monkeypatch, tmp_path, key: str | None) -> dict:
    import runpy

    from conf.settings import REPO_ROOT

    monkeypatch.setenv("SUPERSET_METADATA_DB", str(tmp_path / "superset.db"))
    if key is None:
        monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SUPERSET_SECRET_KEY", key)
    return runpy.run_path(str(REPO_ROOT / "conf" / "superset" / "superset_config.py"))


def test_superset_refuses_a_published_or_short_secret_key(monkeypatch, tmp_path):
    import pytest

    for published in ("local-stack-only-change-me-0f3c9a", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "short"):
        with pytest.raises(RuntimeError, match="SUPERSET_SECRET_KEY"):
            load_superset_config(monkeypatch, tmp_path, published)
    assert load_superset_config(monkeypatch, tmp_path, "k" * 40)["SECRET_KEY"] == "k" * 40


def test_without_a_key_each_install_generates_its_own_kept_private(monkeypatch, tmp_path):
    first = load_superset_config(monkeypatch, tmp_path, None)["SECRET_KEY"]
    assert len(first) >= 48 and (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_superset_config(monkeypatch, tmp_path, "")["SECRET_KEY"] == first  # the next start signs the same
    other = tmp_path / "other"
    other.mkdir()
    assert load_superset_config(monkeypatch, other, None)["SECRET_KEY"] != first
