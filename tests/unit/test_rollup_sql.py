"""The rollup job's pure parts: which Gold commits a refresh must look at, and the SQL it
builds from them (tests/spark/test_rollups.py runs them on real tables)."""

from __future__ import annotations

from datetime import date

from conf.gold_days import days_predicate
from jobs.rollup_job import changed_days_sql, commits_since, disposition_select, performance_select

PARENTS = {5: 4, 4: 3, 3: 2, 2: None, 9: 8}  # 8 expired: 9's parent link leads nowhere


def test_commits_since_walks_parent_links_back_to_the_reflected_snapshot():
    assert commits_since(PARENTS, 5, 2) == [5, 4, 3]
    assert commits_since(PARENTS, 5, 4) == [5]
    assert commits_since(PARENTS, 5, 5) == []


def test_commits_since_is_none_when_the_reflected_snapshot_is_not_an_ancestor():
    assert commits_since(PARENTS, 5, 7) is None  # not in the chain: Gold was replaced
    assert commits_since(PARENTS, 9, 2) is None  # the chain breaks at an expired snapshot


def test_changed_days_reads_partitions_as_of_the_refreshed_snapshot():
    sql = changed_days_sql("lakehouse.gold.state", 5, [5, 4])
    assert "lakehouse.gold.state.partitions VERSION AS OF 5" in sql
    assert sql.endswith("last_updated_snapshot_id IN (5, 4)")
    assert changed_days_sql("g", 5, []).endswith("IN (NULL)")  # matches nothing, still valid SQL


def test_rollup_selects_read_only_the_given_partitions():
    predicate = days_predicate([date(2026, 1, 5), None])
    for select in (performance_select, disposition_select):
        sql = select("lakehouse.gold.state VERSION AS OF 5", predicate)
        assert "FROM lakehouse.gold.state VERSION AS OF 5" in sql and predicate in sql
