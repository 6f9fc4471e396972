"""SCD Type 2 in plain Python: the model the Spark MERGE implementation is checked against.
Same conventions as docs/design.md §7; written without importing dims/."""

from __future__ import annotations

from datetime import datetime

OPEN_END = datetime(9999, 12, 31)


def apply(history: list[dict], snapshot: list[dict], as_of: datetime, key: str, tracked: tuple, type1: tuple,
          surrogate: str) -> list[dict]:
    rows = [dict(row) for row in history]
    current = {row[key]: row for row in rows if row["is_current"]}
    listed = {row[key]: row for row in snapshot}
    opened = []
    for natural_key in sorted(listed):
        incoming, version = listed[natural_key], current.get(natural_key)
        if version is None or any(version[c] != incoming[c] for c in tracked):
            if version is not None:
                version["end_ts"], version["is_current"] = as_of, False
            opened.append(natural_key)
        for row in rows:  # type 1: overwrite every version
            if row[key] == natural_key:
                row.update({c: incoming[c] for c in type1})
    for natural_key, version in current.items():
        if natural_key not in listed:
            version["end_ts"], version["is_current"] = as_of, False
    next_key = max((row[surrogate] for row in rows), default=0)
    for number, natural_key in enumerate(opened, start=1):
        rows.append({key: natural_key, surrogate: next_key + number,
                     **{c: listed[natural_key][c] for c in (*tracked, *type1)},
                     "start_ts": as_of, "end_ts": OPEN_END, "is_current": True})
    return rows


def check_invariants(rows: list[dict], key: str, surrogate: str, last_snapshot_keys: set) -> None:
    """One current row per listed key and none for others; versions of a key never
    overlap; surrogate keys are unique."""
    assert len({row[surrogate] for row in rows}) == len(rows), "surrogate key reused"
    by_key: dict = {}
    for row in rows:
        by_key.setdefault(row[key], []).append(row)
    for natural_key, versions in by_key.items():
        currents = [v for v in versions if v["is_current"]]
        assert len(currents) == (1 if natural_key in last_snapshot_keys else 0), natural_key
        versions.sort(key=lambda v: v["start_ts"])
        for version in versions:
            assert version["start_ts"] < version["end_ts"], (natural_key, version)
        for earlier, later in zip(versions, versions[1:]):
            assert earlier["end_ts"] <= later["start_ts"], f"{natural_key}: versions overlap"
        assert all(v["end_ts"] == OPEN_END for v in currents)
