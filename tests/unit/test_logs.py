"""LOG_LEVEL decides what the jobs print (conf/logs.py)."""

import logging

import pytest
from pydantic import ValidationError

from conf.logs import configure_logging
from conf.settings import Settings


@pytest.fixture(autouse=True)
def restore_levels():
    yield
    configure_logging("INFO")


def test_info_lines_show_at_info_and_vanish_at_warning(capsys):
    job = logging.getLogger("jobs.rollup_job")
    configure_logging("INFO")
    job.info("rollup x: up to date")
    assert capsys.readouterr().out == "rollup x: up to date\n"  # the bare message: `batch N: ...` lines parse as before
    configure_logging("WARNING")
    job.info("rollup x: up to date")
    job.warning("batch 3: Gold MERGE lost a commit race")
    assert capsys.readouterr().out == "batch 3: Gold MERGE lost a commit race\n"


def test_libraries_stay_quiet_whatever_the_level(capsys):
    configure_logging("DEBUG")
    logging.getLogger("py4j.clientserver").info("Closing down clientserver connection")
    logging.getLogger("engine.attribution_batch").debug("planning")
    assert capsys.readouterr().out == "planning\n"


def test_configuring_twice_prints_once(capsys):
    configure_logging("INFO")
    configure_logging("INFO")
    logging.getLogger("dims.campaign_scd2_job").info("once")
    assert capsys.readouterr().out == "once\n"


def test_an_unknown_level_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="LOG_LEVEL 'loud' is not one of DEBUG, INFO, WARNING, ERROR"):
        Settings()
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert Settings().log_level == "WARNING"


def test_a_job_run_as_a_script_logs_its_own_lines():
    """spark-submit runs jobs/x.py as __main__: its `attribution job:` line is what the kill
    test and the freshness benchmark wait for."""
    import subprocess
    import sys

    from conf.settings import REPO_ROOT

    script = ("import logging; from conf.logs import configure_logging; configure_logging('INFO'); "
              "logging.getLogger(__name__).info('attribution job: t -> bronze')")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout == "attribution job: t -> bronze\n", done.stderr
