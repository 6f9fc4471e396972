"""`make doctor`: what the machine lacks for the local stack, one line each with its fix."""

from __future__ import annotations

import socket

from conf.settings import Settings
from stack.launcher import LocalStack

PORT_FIELDS = ("s3", "seaweedfs_master_port", "seaweedfs_volume_port", "seaweedfs_filer_port", "kafka",
               "kafka_controller_port", "catalog", "trino_port", "superset_port")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_doctor_names_a_taken_port_and_a_missing_tool(tmp_path, monkeypatch):
    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS))))
    s3, kafka, catalog = ports.pop("s3"), ports.pop("kafka"), ports.pop("catalog")
    settings = Settings(runtime_dir=str(tmp_path / "runtime"), cache_dir=str(tmp_path / "cache"),
                        s3_endpoint=f"http://127.0.0.1:{s3}", kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
                        catalog_uri=f"http://127.0.0.1:{catalog}", **ports)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", kafka))
        squatter.listen()
        problems = LocalStack(settings).doctor()
    taken = [line for line in problems if line.startswith("port ")]
    assert len(taken) == 1 and taken[0].startswith(f"port {kafka} (needed by kafka) is taken by pid "), problems
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, mvn or curl here
    problems = LocalStack(settings).doctor()
    assert any("no mvn on PATH" in line and "apt-get install maven" in line for line in problems)
    assert any("no java on PATH" in line for line in problems)


def test_stack_up_runs_the_doctor_first_one_error_line_per_problem(tmp_path):
    """`make demo` and `make stack-up` start with `python -m stack up`: without java or Maven
    it prints the doctor's lines with their fixes and starts nothing."""
    import subprocess
    import sys

    from conf.settings import REPO_ROOT

    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS))))
    env = {"PATH": str(tmp_path), "RUNTIME_DIR": str(tmp_path / "runtime"), "CACHE_DIR": str(tmp_path / "cache"),
           "S3_ENDPOINT": f"http://127.0.0.1:{ports.pop('s3')}",
           "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports.pop('kafka')}",
           "CATALOG_URI": f"http://127.0.0.1:{ports.pop('catalog')}",
           **{name.upper(): str(port) for name, port in ports.items()}}
    done = subprocess.run([sys.executable, "-m", "stack", "up"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert any("no java on PATH" in line and "apt-get install openjdk-17-jdk-headless" in line for line in errors)
    assert any("no mvn on PATH" in line and "apt-get install maven" in line for line in errors)
    assert not list((tmp_path / "runtime").glob("pids/*.pid"))  # nothing started
