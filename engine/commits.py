"""Iceberg commits that lose a race: recognising the conflict and re-planning the statement.

Optimistic concurrency lets a writer commit only on top of the snapshot it planned from;
when another writer (table maintenance, the progress thread's session) committed first
and the two touch the same files, Iceberg's validation fails. Retrying the commit cannot
fix that; reading the table afresh and planning the statement again can, and every write
here is idempotent, so doing it again is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# What Iceberg raises when another writer committed first and this commit's validation fails.
CONFLICT_SIGNS = ("ValidationException", "CommitFailedException", "Found conflicting files",
                  "Cannot commit", "Missing required files")


def is_commit_conflict(error: BaseException) -> bool:
    return any(sign in str(error) for sign in CONFLICT_SIGNS)


def first_line(error: BaseException) -> str:
    """An error as one log line (Spark's and Iceberg's messages run to pages)."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def retry_on_conflict(spark, table: str, action: Callable[[], T], attempts: int = 6,
                      on_retry: Callable[[int], None] | None = None) -> T:
    """`action()`, run again (after `REFRESH TABLE table` and a growing pause) while it
    loses a commit race, at most `attempts` times; any other error is raised at once.
    `on_retry(next_attempt)` runs before each new attempt (to log, to drop derived state)."""
    for attempt in range(1, attempts):
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - only commit conflicts are retried
            if not is_commit_conflict(error):
                raise
            if on_retry is not None:
                on_retry(attempt + 1)
            spark.sql(f"REFRESH TABLE {table}")
            time.sleep(attempt)
    return action()
