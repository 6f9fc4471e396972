"""The jobs' log: Python's `logging`, one line per message on stdout (spark-submit passes a
driver's stdout through; a batch line reads `batch 12: ...` as before), at LOG_LEVEL.

Only the project's own loggers (jobs, dims, producers, dashboards, stack, and the script
spark-submit runs) follow LOG_LEVEL;
every other library (py4j, urllib3, ...) logs warnings and worse, so the default stays quiet.
"""

from __future__ import annotations

import logging
import sys

# "__main__": a job run as a script (spark-submit jobs/x.py) logs under that name.
PACKAGES = ("__main__", "jobs", "engine", "dims", "producers", "dashboards", "stack", "conf")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Stdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (a test's capture, a redirected stream)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str) -> None:
    """Route the project's loggers to stdout at `level` (Settings.log_level). Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(handler, _Stdout) for handler in root.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for package in PACKAGES:
        logging.getLogger(package).setLevel(level.upper())
