"""A service that is not up gets a message naming it, where it was looked for, and how to
start it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stack.preflight import problems, require
from conf.settings import REPO_ROOT, Settings

DOWN = Settings(kafka_bootstrap_servers="127.0.0.1:1", s3_endpoint="http://127.0.0.1:2",
                catalog_uri="http://127.0.0.1:3", trino_port=4)


def test_each_unreachable_service_is_named_with_its_address():
    found = problems(DOWN, ("kafka", "s3", "catalog", "trino"))
    assert found == [
        "Kafka not reachable at 127.0.0.1:1 (KAFKA_BOOTSTRAP_SERVERS)",
        "S3 store not reachable or failing at http://127.0.0.1:2 (S3_ENDPOINT)",
        "Iceberg REST catalog not reachable or failing at http://127.0.0.1:3 (CATALOG_URI)",
        "Trino not reachable or failing at http://127.0.0.1:4 (TRINO_HOST, TRINO_PORT)",
    ]


def test_a_service_answering_a_server_error_is_down_and_a_refused_anonymous_probe_is_not():
    """A catalog answering 500 is an outage (the job waits, and never isolates poison while
    it lasts); S3 refusing an anonymous request (403) is how a working store answers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500 if self.path.startswith("/v1/config") else 403)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        found = problems(Settings(s3_endpoint=url, catalog_uri=url), ("s3", "catalog"))
        assert found == [f"Iceberg REST catalog not reachable or failing at {url} (CATALOG_URI)"]
    finally:
        server.shutdown()


def test_require_exits_with_advice():
    with pytest.raises(SystemExit, match="make stack-up"):
        require(DOWN, "catalog")


def test_the_streaming_job_stops_before_spark_when_the_catalog_is_down():
    env = {"CATALOG_URI": "http://127.0.0.1:3", "S3_ENDPOINT": "http://127.0.0.1:2",
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "jobs/attribution_streaming_job.py", "--trigger", "available-now"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Iceberg REST catalog not reachable or failing at http://127.0.0.1:3" in result.stderr
    assert "S3 store not reachable" in result.stderr and "Kafka not reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_streaming_job_refuses_a_poison_threshold_it_would_never_reach():
    """Each failed attempt of a batch is a restart of the query: with more attempts than
    restarts the job would give up before isolating anything."""
    env = {"POISON_BATCH_ATTEMPTS": "6", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "jobs/attribution_streaming_job.py", "--max-restarts", "5"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "POISON_BATCH_ATTEMPTS=6 with --max-restarts 5" in result.stderr
