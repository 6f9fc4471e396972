"""Settings, templating and version pins: pure functions, no JVM, no services."""

from __future__ import annotations

import re

import pytest

from conf.settings import CONF_DIR, REPO_ROOT, Settings, versions
from conf.spark_session import catalog_options, spark_jar_coordinates
from stack.launcher import (
    StackError,
    iceberg_rest_env,
    kafka_overrides,
    maven_pom,
    override_properties,
    render_template,
    trino_env,
)


def spark_defaults() -> dict[str, str]:
    entries = {}
    for line in (CONF_DIR / "spark" / "spark-defaults.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            entries[key] = value.strip()
    return entries


def test_settings_read_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:19092")
    monkeypatch.setenv("S3_ENDPOINT", "http://store:9000")
    settings = Settings()
    assert settings.kafka_port == 19092
    assert settings.s3_port == 9000
    assert settings.warehouse == "s3://lakehouse/warehouse"


def test_settings_read_dotenv_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("TRINO_PORT=18080\nKAFKA_TOPIC=other_events\n")
    monkeypatch.delenv("TRINO_PORT", raising=False)
    settings = Settings(_env_file=env_file)
    assert settings.trino_port == 18080
    assert settings.trino_url.endswith(":18080")
    assert settings.kafka_topic == "other_events"


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), re.M))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "undocumented settings"
    assert documented - expected == set(), ".env.example names settings that do not exist"


def test_spark_jars_match_pinned_versions():
    pins = versions()["spark"]
    coordinates = spark_jar_coordinates()
    scala, line = pins["scala"], pins["pyspark"].rsplit(".", 1)[0]
    assert f"org.apache.iceberg:iceberg-spark-runtime-{line}_{scala}:{pins['iceberg']}" in coordinates
    assert f"org.apache.iceberg:iceberg-aws-bundle:{pins['iceberg']}" in coordinates
    assert f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{pins['pyspark']}" in coordinates, \
        "the connector is of pyspark's own release"
    assert pins["kafka_token_provider"].rsplit(".", 1)[0] == line, "the token provider must be of Spark's line"
    assert not {"spark.jars", "spark.jars.packages"} & set(spark_defaults()), \
        "jars come from stack/spark_conf.py (pinned, cached), none resolved or fetched at start"
    assert f'"pyspark=={pins["pyspark"]}"' in (REPO_ROOT / "pyproject.toml").read_text()


def test_generated_spark_conf_is_the_template_plus_the_cached_jars_and_the_master(tmp_path, monkeypatch):
    from stack import spark_conf

    jars = [tmp_path / "cache" / name for name in ("a.jar", "b.jar")]
    monkeypatch.setattr(spark_conf, "spark_jars", lambda settings: jars)
    target = spark_conf.spark_conf_dir(Settings(runtime_dir=str(tmp_path / "run"), spark_master="spark://127.0.0.1:7077"))
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in (CONF_DIR / "spark").iterdir())
    template = (CONF_DIR / "spark" / "spark-defaults.conf").read_text()
    written = (target / "spark-defaults.conf").read_text()
    assert written.startswith(template)
    assert written.rstrip().endswith(f"spark.jars    {jars[0]},{jars[1]}\nspark.master  spark://127.0.0.1:7077")
    assert (target / "log4j2.properties").read_text() == (CONF_DIR / "spark" / "log4j2.properties").read_text()


def test_catalog_options_point_at_settings():
    settings = Settings(catalog_uri="http://catalog:1", s3_endpoint="http://s3:2")
    options = catalog_options(settings)
    assert options["spark.sql.catalog.lakehouse.uri"] == "http://catalog:1"
    assert options["spark.sql.catalog.lakehouse.s3.endpoint"] == "http://s3:2"
    assert options["spark.sql.catalog.lakehouse.io-impl"].endswith("S3FileIO")


def test_render_template_fills_and_refuses_missing():
    assert render_template("a=${X_1} b=${Y}", {"X_1": "1", "Y": "2"}) == "a=1 b=2"
    with pytest.raises(StackError, match="MISSING"):
        render_template("${MISSING}", {})


def test_override_properties_replaces_keeps_comments_and_appends():
    text = "# comment\nlisteners=old\nlog.dirs=/x\n"
    result = override_properties(text, {"listeners": "new", "extra.key": "1"})
    assert result.splitlines() == ["# comment", "listeners=new", "log.dirs=/x", "extra.key=1"]


def test_kafka_overrides_follow_bootstrap_address(tmp_path):
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:19092", kafka_controller_port=19093)
    overrides = kafka_overrides(settings, tmp_path)
    assert overrides["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert overrides["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert overrides["log.dirs"] == str(tmp_path)


def test_maven_pom_lists_coordinates_with_classifier():
    pom = maven_pom(["g:a:1", "g:b:2:tests"])
    assert "<artifactId>a</artifactId><version>1</version></dependency>" in pom
    assert "<artifactId>b</artifactId><version>2</version><classifier>tests</classifier>" in pom


def test_every_trino_placeholder_has_a_value():
    settings = Settings()
    provided = set(trino_env(settings))
    used = set()
    for path in (CONF_DIR / "trino" / "etc").rglob("*"):
        if path.is_file():
            used |= set(re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", path.read_text()))
    assert used and used <= provided, f"placeholders without a value: {used - provided}"


def test_iceberg_rest_env_uses_a_file_backed_catalog(tmp_path):
    env = iceberg_rest_env(Settings(), tmp_path / "catalog.db")
    assert env["CATALOG_URI"] == f"jdbc:sqlite:file:{tmp_path / 'catalog.db'}"
    assert env["CATALOG_WAREHOUSE"] == "s3://lakehouse/warehouse"
    assert env["REST_PORT"] == "8181"


def test_no_service_port_is_claimed_twice():
    s = Settings(spark_master="spark://127.0.0.1:7077")  # with the standalone cluster's ports
    spark = [s.spark_master_port, s.spark_master_webui_port, *(p for ports in s.spark_worker_ports for p in ports)]
    ports = [s.kafka_port, s.kafka_controller_port, s.s3_port, s.catalog_port, s.trino_port, s.superset_port,
             s.seaweedfs_master_port, s.seaweedfs_volume_port, s.seaweedfs_filer_port, *spark]
    assert len(ports) == len(set(ports))
    # Jupyter (8888), Grafana (3000), Metabase (3030) and the Spark UI (4040) stay free.
    assert not {8888, 3000, 3030, 4040} & set(ports)


def test_repository_carries_no_binaries():
    ignored = {".venv", ".stack", ".git", ".hypothesis", ".pytest_cache"}  # (hypothesis caches gzipped unicode data)
    tracked = [p for p in REPO_ROOT.rglob("*") if not ignored & set(p.relative_to(REPO_ROOT).parts)]
    binaries = [p for p in tracked if p.suffix in {".jar", ".gz", ".tgz", ".zip", ".parquet"}]
    assert binaries == []


def test_checkpoints_go_to_s3_whenever_the_master_is_not_local():
    assert Settings(spark_master="local[2]").checkpoints == str(REPO_ROOT / ".stack" / "checkpoints")
    for master in ("spark://127.0.0.1:7077", "k8s://https://10.0.0.1:6443", "yarn"):
        assert Settings(spark_master=master, s3_bucket="lake").checkpoints == "s3a://lake/checkpoints"
    assert Settings(spark_master="yarn", checkpoint_dir="s3a://other/ckpt/").checkpoints == "s3a://other/ckpt"
    cluster = Settings(spark_master="spark://127.0.0.1:7177")
    assert cluster.spark_cluster and cluster.spark_master_port == 7177
    assert not Settings(spark_master="yarn").spark_cluster, "the stack starts a standalone cluster only"
