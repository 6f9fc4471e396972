"""Gold's partitioning: the UTC day in an impression id (docs/design.md §3), as SQL and in
Python. The streaming job, the replay, rollups and maintenance all prune Gold with these."""

from __future__ import annotations

from datetime import date, timedelta

# A time-ordered impression id: a UUIDv7 (RFC 9562; its first 48 bits are Unix milliseconds),
# optionally behind a prefix such as "imp-". Gold is partitioned by the UTC day in the id, so
# a row's partition follows from its key alone and a MERGE reads only the days its batch's
# ids name — whatever the arrival order, and however large Gold has grown. Other ids get a
# NULL day (one partition: correct, but not pruned).
UUID7_SUFFIX = "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
# The last day a DATE holds (9999-12-31) as days since 1970: a UUIDv7's 48-bit millisecond
# field reaches year 10889, and an id past this day is treated as not time-ordered.
LAST_UNIX_DAY = 2_932_896
EPOCH = date(1970, 1, 1)


def impression_id_day(column: str = "impression_id") -> str:
    """SQL: the UTC day encoded in a UUIDv7 impression id, or NULL (also for a day past 9999)."""
    hex_ms = f"substr(right({column}, 36), 1, 8) || substr(right({column}, 36), 10, 4)"
    unix_day = f"CAST(floor(CAST(conv({hex_ms}, 16, 10) AS BIGINT) / 86400000) AS INT)"
    return (f"CASE WHEN lower({column}) RLIKE '{UUID7_SUFFIX}' AND {unix_day} <= {LAST_UNIX_DAY} "
            f"THEN date_from_unix_date({unix_day}) END")


def day_of(unix_day: int | None) -> date | None:
    """A day counted from 1970 (as batch_days_sql collects it) as a date; None stays None."""
    if unix_day is None:
        return None
    if not -719_162 <= unix_day <= LAST_UNIX_DAY:
        raise ValueError(f"day {unix_day} since 1970 is outside years 1..9999")
    return EPOCH + timedelta(days=unix_day)


def days_predicate(days, column: str = "impression_id_day") -> str:
    """SQL: `column` is one of `days` (dates; None stands for the NULL partition)."""
    known = sorted(day for day in days if day is not None)
    terms = [f"{column} IN ({', '.join(f'DATE {day.isoformat()!r}' for day in known)})"] if known else []
    if any(day is None for day in days):
        terms.append(f"{column} IS NULL")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def batch_days_sql(impression_id: str = "impression_id") -> str:
    """SQL aggregate over a validated batch: the impression-id days its valid records name,
    as days since 1970 (integers: a record's data never becomes a Python date unchecked; see
    day_of) in structs, so that the NULL day (ids that are not UUIDv7) survives collect_set."""
    return ("collect_set(IF(reject_reason IS NULL, "
            f"named_struct('day', unix_date({impression_id_day(impression_id)})), NULL))")
