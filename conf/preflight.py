"""Before a job starts: is every service it needs reachable? One line per missing service,
saying where it was looked for and how to start it — instead of a JVM stack trace."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from urllib.parse import urlparse

from conf.settings import Settings


def _tcp(address: str, timeout: float = 2.0) -> bool:
    parsed = urlparse(address if "//" in address else f"//{address}")
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
            return True
    except (OSError, TypeError):
        return False


def http_answers(url: str, timeout: float = 3.0) -> bool:
    """True when anything answers HTTP at `url` (an error status counts: it is up)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False


def problems(settings: Settings, services: tuple[str, ...]) -> list[str]:
    checks = {
        "kafka": (lambda: any(_tcp(a.strip()) for a in settings.kafka_bootstrap_servers.split(",")),
                  f"Kafka not reachable at {settings.kafka_bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"),
        "s3": (lambda: http_answers(settings.s3_endpoint),
               f"S3 store not reachable at {settings.s3_endpoint} (S3_ENDPOINT)"),
        "catalog": (lambda: http_answers(f"{settings.catalog_uri.rstrip('/')}/v1/config"),
                    f"Iceberg REST catalog not reachable at {settings.catalog_uri} (CATALOG_URI)"),
        "trino": (lambda: http_answers(f"{settings.trino_url}/v1/info"),
                  f"Trino not reachable at {settings.trino_url} (TRINO_HOST, TRINO_PORT)"),
    }
    return [message for name in services for check, message in [checks[name]] if not check()]


def require(settings: Settings, *services: str) -> None:
    """Exit with a clear message when a needed service is down."""
    missing = problems(settings, services)
    if missing:
        raise SystemExit("\n".join(f"error: {line}" for line in missing)
                         + "\n  start the local stack with `make stack-up` (or `make up` for Docker), "
                           "or point the variables above at your services")
