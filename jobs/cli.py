"""The jobs' shared command-line preamble: one parser shape (a description from the
module's docstring, --table-prefix) and one way to start — the services a job needs are
checked first (an `error:` line naming what is down and how to start it, exit 1), then
the one SparkSession factory."""

from __future__ import annotations

import argparse
import os

from conf.settings import Settings, get_settings


def job_parser(prog: str, doc: str | None, settings: Settings | None = None) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of `doc` and which takes
    --table-prefix (TABLE_NAMESPACE_PREFIX); the job logs at LOG_LEVEL from here on."""
    from conf.logs import configure_logging

    settings = settings or get_settings()
    configure_logging(settings.log_level)
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    parser.add_argument("--table-prefix", default=settings.table_namespace_prefix,
                        help="namespace prefix of every table (TABLE_NAMESPACE_PREFIX; default: none)")
    return parser


def job_session(app_name: str, settings: Settings, *services: str, **spark_options: str):
    """The job's SparkSession, once `services` (names of stack.preflight checks) answer."""
    from stack.preflight import require

    require(settings, *services)
    return start_spark(app_name, settings, **spark_options)


def start_spark(app_name: str, settings: Settings | None = None, **spark_options: str):
    """conf.spark_session.build_spark with the generated SPARK_CONF_DIR (stack/spark_conf.py):
    set here for a driver started from Python; spark-submit must have been given it."""
    from conf.spark_session import build_spark, running_under_spark_submit
    from stack.spark_conf import spark_conf_dir

    settings = settings or get_settings()
    if not os.environ.get("SPARK_CONF_DIR"):
        if running_under_spark_submit():  # the JVM already runs, without the jars
            raise SystemExit("error: spark-submit ran without SPARK_CONF_DIR, so without the Kafka and Iceberg "
                             "jars: use the make targets, or SPARK_CONF_DIR=$(python -m stack.spark_conf) spark-submit ... (the venv's python)")
        os.environ["SPARK_CONF_DIR"] = str(spark_conf_dir(settings))
    return build_spark(app_name, settings, **spark_options)
