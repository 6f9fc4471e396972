"""The directory SPARK_CONF_DIR points at: conf/spark's files plus `spark.jars`, the jars
of conf.spark_session.spark_jar_coordinates resolved once from Maven Central (without their
dependencies: pyspark ships the rest) into the download cache and checked against the
SHA-256 in conf/versions.toml at every use.

    python -m stack.spark_conf        # resolve if needed, write the directory, print its path

Spark's own `spark.jars.packages` cannot be used: it resolves the connector's dependency
tree, and the connector of pyspark's release names a token provider that Maven Central does
not have (docs/versions.md). Resolving here also keeps Ivy's report out of every start.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from conf.settings import Settings, get_settings, versions
from conf.spark_session import SPARK_CONF_TEMPLATE, spark_jar_coordinates
from stack.launcher import Downloads, StackError


def spark_jars(settings: Settings) -> list[Path]:
    pins, coordinates = versions()["spark"], spark_jar_coordinates()
    # Named after the jar set: a changed set resolves into a directory of its own.
    digest = hashlib.sha256("\n".join(coordinates).encode()).hexdigest()[:8]
    name = f"spark-jars-{pins['pyspark']}-{digest}"
    directory = Downloads(settings).maven_classpath(name, coordinates, pins["jars_sha256"], transitive=False)
    return sorted(directory.glob("*.jar"))


def _write(path: Path, text: str) -> None:
    """Replace `path` atomically, and only when its text changes (a running driver may read it)."""
    if path.exists() and path.read_text() == text:
        return
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, path)


def spark_conf_dir(settings: Settings | None = None) -> Path:
    """Write (or refresh) the generated configuration directory and return it."""
    settings = settings or get_settings()
    target = Path(settings.runtime_dir) / "spark-conf"
    target.mkdir(parents=True, exist_ok=True)
    jars = ",".join(str(jar) for jar in spark_jars(settings))
    for source in sorted(SPARK_CONF_TEMPLATE.iterdir()):
        text = source.read_text()
        if source.name == "spark-defaults.conf":
            text += f"# Added by stack/spark_conf.py: the jars of conf/versions.toml, from the download cache,\n" \
                    f"# and the master SPARK_MASTER names (spark-submit's --master still wins).\n" \
                    f"spark.jars    {jars}\nspark.master  {settings.spark_master}\n"
        _write(target / source.name, text)
    return target


def main() -> int:
    try:
        print(spark_conf_dir())
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
