"""Before a job starts: is every service it needs reachable? One line per missing service,
saying where it was looked for and how to start it — instead of a JVM stack trace."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from urllib.parse import urlparse

from conf.settings import Settings


def tcp_reachable(addresses: str, timeout: float = 2.0) -> bool:
    """Whether any of the comma-separated host:port addresses accepts a TCP connection."""
    for address in addresses.split(","):
        parsed = urlparse(f"//{address.strip()}")
        try:
            with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
                return True
        except (OSError, TypeError, ValueError):
            continue
    return False


def http_status(url: str, timeout: float = 3.0) -> int | None:
    """The HTTP status `url` answers with (an error status too), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def http_answers(url: str, timeout: float = 3.0) -> bool:
    """True when anything answers HTTP at `url` (an error status counts: it is up)."""
    return http_status(url, timeout) is not None


def http_healthy(url: str, timeout: float = 3.0) -> bool:
    """True when `url` answers without a server error. A 4xx is not held against a service
    here: this probe is anonymous, and an S3 store or a catalog with authentication refuses
    it while working. Credentials that stopped working show in the job's canary instead
    (engine/poison.py)."""
    status = http_status(url, timeout)
    return status is not None and status < 500


def problems(settings: Settings, services: tuple[str, ...]) -> list[str]:
    checks = {
        "kafka": (lambda: tcp_reachable(settings.kafka_bootstrap_servers),
                  f"Kafka not reachable at {settings.kafka_bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"),
        "s3": (lambda: http_healthy(settings.s3_endpoint),
               f"S3 store not reachable or failing at {settings.s3_endpoint} (S3_ENDPOINT)"),
        "catalog": (lambda: http_healthy(f"{settings.catalog_uri.rstrip('/')}/v1/config"),
                    f"Iceberg REST catalog not reachable or failing at {settings.catalog_uri} (CATALOG_URI)"),
        "trino": (lambda: http_healthy(f"{settings.trino_url}/v1/info"),
                  f"Trino not reachable or failing at {settings.trino_url} (TRINO_HOST, TRINO_PORT)"),
    }
    return [message for name in services for check, message in [checks[name]] if not check()]


def require(settings: Settings, *services: str) -> None:
    """Exit with a clear message when a needed service is down."""
    missing = problems(settings, services)
    if missing:
        raise SystemExit("\n".join(f"error: {line}" for line in missing)
                         + "\n  start the local stack with `make stack-up` (or `make up` for Docker), "
                           "or point the variables above at your services")
