"""The replay drops and recreates its target and filters Bronze by --since/--until, so its
arguments are checked before anything runs: times are parsed (never pasted into SQL), and
the target is a plain name that is none of the lakehouse's own tables — live Gold only
with --replace-gold. The catalog half (an existing table no replay wrote) is tried on the
real catalog in tests/integration/test_exactly_once.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conf.tables import Tables
from jobs.replay_job import TargetRefused, check_target_name, main, project_tables

TABLES = Tables("t_")


@pytest.mark.parametrize("target", [
    TABLES.bronze,
    TABLES.audit,
    TABLES.rules,
    TABLES.dim_campaigns,
    TABLES.stream_progress,
    TABLES.performance_rollup,
    TABLES.attribution_models,
    " " + TABLES.gold,
    TABLES.gold.upper(),
    "`lakehouse`.`t_gold`.`ad_performance_state`",
    "lakehouse.t_gold.x; DROP TABLE lakehouse.t_bronze.ad_events",
    "lakehouse.t_gold.ad_performance_state -- ",
    "other_catalog.t_gold.shadow",
    "t_gold.shadow",
])
def test_no_target_that_names_a_lakehouse_table_or_is_not_a_plain_name_is_accepted(target):
    with pytest.raises(TargetRefused):
        check_target_name(target, TABLES, replace_gold=False)


def test_a_shadow_is_accepted_in_canonical_form_and_gold_only_with_replace_gold():
    assert check_target_name("LAKEHOUSE.t_gold.My_Shadow", TABLES, False) == "lakehouse.t_gold.my_shadow"
    assert check_target_name(f"{TABLES.gold}_replay", TABLES, False) == f"{TABLES.gold}_replay"
    assert check_target_name(TABLES.gold, TABLES, replace_gold=True) == TABLES.gold
    with pytest.raises(TargetRefused, match="--replace-gold"):
        check_target_name(TABLES.gold, TABLES, replace_gold=False)
    assert {TABLES.bronze, TABLES.gold, TABLES.dim_users, TABLES.attribution_model_fit} <= project_tables(TABLES)


@pytest.mark.parametrize("argv, said", [
    (["--target", "lakehouse.bronze.ad_events"], "lakehouse's own tables"),
    (["--target", "`lakehouse`.`gold`.`ad_performance_state`"], "not a plain"),
    (["--target", " lakehouse.gold.ad_performance_state"], "not a plain"),
    (["--target", "lakehouse.gold.ad_performance_state"], "--replace-gold"),
    (["--since", "2026-01-01' OR true OR timestamp'2026-01-01"], "not an ISO-8601 time"),
    (["--until", "yesterday"], "not an ISO-8601 time"),
    (["--replace-gold", "--target", "lakehouse.gold.shadow"], "takes no --target"),
])
def test_the_command_refuses_with_exit_2_before_starting_spark(argv, said, capsys):
    """No service runs here: a refusal that started Spark or asked the catalog would fail
    differently (a preflight error names the service, exit 1)."""
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    assert said in capsys.readouterr().err


def test_times_with_z_an_offset_or_none_are_the_same_instant():
    from jobs.replay_job import instant

    utc = datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert instant("2026-01-05T00:00:00Z") == instant("2026-01-05T01:00:00+01:00") == instant("2026-01-05") == utc
