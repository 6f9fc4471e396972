"""The project's own images (the ones docker/compose.yaml builds), built with podman and run
for real against the local stack with host networking: the Spark image runs the streaming
job with spark-submit and Gold equals the oracle; the same image, started as compose's
jupyter service, answers and executes the path-analysis notebook headless; the Superset
image starts, answers /health and logs its admin in. The containers get the variables
compose gives them (x-lakehouse-env and the services' own), valued from this stack's
settings. Containers are removed even when a test fails."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from contextlib import contextmanager

import pytest
import yaml

from conf.settings import REPO_ROOT
from dashboards import notebook as path_analysis
from stack.images import COMPOSE_FILE, Engine, build_all, compose_default, project_images
from tests import stack_locks
from tests.streaming_helpers import JOB, Scenario

pytestmark = pytest.mark.stack

JOB_TIMEOUT_S = 600
CONTAINER_DATA = "/data"  # where compose mounts each service's volume


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def engine(settings):
    return Engine(settings)


@pytest.fixture(scope="module")
def images(engine, settings) -> dict[str, str]:
    """{compose service: tag} of the images built here (from cache when nothing changed)."""
    started = time.monotonic()
    times = build_all(settings)
    print(f"\nimages built in {time.monotonic() - started:.0f} s: " + ", ".join(f"{s} {t:.0f} s" for s, t in times.items()))
    return {image.service: image.tag for image in project_images()}


@pytest.fixture(scope="module", autouse=True)
def stack_in_use(images, settings):
    """The stack shared as in every integration module (tests/integration/conftest.py), but
    only once the images are built: a cold build (minutes) needs no stack, and must not
    keep a module that stops services (the outage test) waiting."""
    with stack_locks.sharing(settings):
        yield


def service_env(compose: dict, service: str, settings, **extra: str) -> dict[str, str]:
    """The variables compose gives `service`; where a name is a setting, this stack's value
    (the containers share the host's network, so they reach the stack as the host does)."""
    values = settings.model_dump()
    env = {}
    for name, value in compose["services"][service].get("environment", {}).items():
        if value is None:  # passed through from the caller's environment: `extra` gives it
            continue
        setting = values.get(name.lower())
        env[name] = str(setting) if setting is not None else compose_default(value)
    return {**env, **extra}


@contextmanager
def container(engine, image: str, command: list[str], env: dict[str, str], volumes: dict[str, str] = {},
              service: dict | None = None):
    """A detached container on the host's network, with the working directory and init process
    of compose's `service`; removed on the way out, whatever happened."""
    name = f"lakehouse-test-{uuid.uuid4().hex[:8]}"
    service = service or {}
    args = ["run", "-d", "--name", name, "--network", "host"]
    args += ["-w", service["working_dir"]] if "working_dir" in service else []
    args += ["--init"] if service.get("init") else []
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for source, target in volumes.items():
        args += ["-v", f"{source}:{target}"]
    engine.run(*args, image, *command)
    try:
        yield name
    finally:
        engine.run("rm", "-f", "-t", "2", name, check=False)


def exit_code(engine, name: str, seconds: float) -> int:
    """The container's exit code once it ends (subprocess.TimeoutExpired after `seconds`)."""
    return int(engine.run("wait", name, timeout=seconds).stdout.strip().splitlines()[-1])


def logs(engine, name: str, lines: int = 60) -> str:
    result = engine.run("logs", "--tail", str(lines), name, check=False)
    return result.stdout + result.stderr


def answers(url: str, seconds: float, name: str, engine, headers: dict | None = None) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer within {seconds:.0f} s:\n{logs(engine, name)}")
            time.sleep(2)


def assert_loopback_only(port: int) -> None:
    """What listens on `port` (a container on the host's network) listens on loopback only."""
    import psutil

    bound = {c.laddr.ip for c in psutil.net_connections(kind="tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert bound and bound <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, bound


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def job_in_image(images, engine, compose, settings, spark, tmp_path_factory):
    """A scenario drained by the Spark image's spark-submit: the command users `exec` in the
    lakehouse-spark container, with its checkpoint on the container's /data volume."""
    work = tmp_path_factory.mktemp("image")
    scenario = Scenario.generated("image", work, 3_000, 37, settings)
    env = service_env(compose, "spark", settings, TABLE_NAMESPACE_PREFIX=scenario.tables.prefix,
                      SPARK_SUBMIT_OPTS=scenario.env["SPARK_SUBMIT_OPTS"])
    checkpoint = f"{CONTAINER_DATA}/checkpoints/{scenario.topic}"
    started = time.monotonic()
    spark_service = compose["services"]["spark"]
    try:
        with container(engine, images["spark"], ["spark-submit", JOB, "--trigger", "available-now", "--topic",
                                                 scenario.topic, "--checkpoint", checkpoint],
                       env, {str(work): CONTAINER_DATA}, spark_service) as name:
            code = exit_code(engine, name, JOB_TIMEOUT_S)
            output = logs(engine, name)
        print(f"\nthe streaming job in the Spark image drained {scenario.count:,} events in "
              f"{time.monotonic() - started:.1f} s (container start included)")
        assert code == 0, output
        yield scenario
    finally:  # the job's tables go even when it failed
        scenario.cleanup(spark)


def test_the_spark_image_runs_the_streaming_job_and_gold_equals_the_oracle(job_in_image, spark):
    job_in_image.assert_bronze_exactly_once(spark)
    job_in_image.assert_gold_and_audit_match(spark)


def test_the_spark_image_as_the_jupyter_service_answers_and_executes_the_notebook(
        job_in_image, images, engine, compose, settings):
    """Compose's jupyter command in the Spark image: JupyterLab answers on its port with the
    compose token; nbconvert executes the notebook headless in it over the job's tables, and
    the notebook's totals are the oracle's."""
    jupyter = compose["services"]["jupyter"]
    token = uuid.uuid4().hex
    # On the host's network, compose's all-interfaces bind would be the host's: loopback here,
    # with a token of this run's own (compose passes JUPYTER_TOKEN through from .env).
    command = [("--ip=127.0.0.1" if part.startswith("--ip=") else compose_default(part)) for part in jupyter["command"]]
    port = int(jupyter["ports"][0].split(":")[-1])
    env = service_env(compose, "jupyter", settings, TABLE_NAMESPACE_PREFIX=job_in_image.tables.prefix,
                      JUPYTER_TOKEN=token)
    assert jupyter["image"] in images.values(), "compose runs the jupyter service from an image it does not build"
    with container(engine, jupyter["image"], command, env, service=jupyter) as name:
        status = json.loads(answers(f"http://127.0.0.1:{port}/api/status", 90, name, engine,
                                    {"Authorization": f"token {token}"}))
        assert "started" in status, status
        assert_loopback_only(port)
        executed = engine.run("exec", name, "jupyter", "nbconvert", "--to", "notebook", "--execute", "--stdout",
                              str(path_analysis.NOTEBOOK.relative_to(REPO_ROOT)), check=False, timeout=300)
        assert executed.returncode == 0, executed.stderr[-3000:]
    import nbformat

    outputs = path_analysis.outputs(nbformat.reads(executed.stdout, as_version=4))
    assert not [o for o in outputs if o.output_type == "error"]
    line = next(text for o in outputs if o.output_type == "stream"
                for text in o.text.splitlines() if text.startswith("SUMMARY "))
    summary = json.loads(line.removeprefix("SUMMARY "))
    converted = [row for row in job_in_image.expected().gold.values() if row["is_converted"]]
    assert summary["conversions"] == len(converted) > 0
    assert summary["revenue"]["gold"] == pytest.approx(sum(row["revenue"] for row in converted), rel=1e-6)


def test_the_superset_image_starts_answers_health_and_logs_its_admin_in(images, engine, compose, settings,
                                                                          tmp_path):
    """The Superset image with compose's variables and a fresh /data volume: its first start
    (schema, admin, roles) ends in a server that answers /health and logs the admin in."""
    port = free_port()
    env = service_env(compose, "superset", settings, SUPERSET_PORT=str(port), SUPERSET_BIND="127.0.0.1")
    with container(engine, images["superset"], [], env, {str(tmp_path): CONTAINER_DATA},
                   compose["services"]["superset"]) as name:
        assert answers(f"http://127.0.0.1:{port}/health", 240, name, engine) == b"OK"
        assert_loopback_only(port)
        assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600  # its own key, generated on first start
        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/security/login", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"username": env["SUPERSET_ADMIN_USER"], "password": env["SUPERSET_ADMIN_PASSWORD"],
                             "provider": "db"}).encode())
        with urllib.request.urlopen(login, timeout=30) as response:
            assert json.load(response)["access_token"]
