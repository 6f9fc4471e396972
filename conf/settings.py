"""One typed settings object, read from the environment and an optional `.env`.

Every endpoint, port, path and default of the project lives here once; the jobs, the
local stack launcher, the generator and the tests all read it. `.env.example` documents
each variable (a unit test keeps the two in step).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conf.logs import LEVELS

CONF_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONF_DIR.parent
CATALOG_NAME = "lakehouse"


@dataclass(frozen=True)
class ValidationLimits:
    """Plausibility bounds of an event (docs/design.md, validation). A record outside them
    goes to the audit with a reason, never to Gold. The replay applies the limits in force
    when it runs, so a changed limit changes what a replay derives."""

    max_ahead_seconds: int = 3_600  # event time later than its Kafka timestamp by more: IMPLAUSIBLE_TIME
    max_age_days: int = 400  # event time earlier than its Kafka timestamp by more: IMPLAUSIBLE_TIME
    max_amount: float = 1e9  # bid_price or conversion_value above this: IMPLAUSIBLE_AMOUNT
    max_id_length: int = 128  # an id longer than this (characters): BAD_ID
    # Copies kept per Gold row, the first by (partition, offset); the rest: TOO_MANY_TOUCHES.
    # Bounds a row's size when a bot or a replay storm piles copies onto one impression.
    max_touches: int = 10_000


class Settings(BaseSettings):
    """Environment variables are the upper-case field names (KAFKA_BOOTSTRAP_SERVERS, ...)."""

    model_config = SettingsConfigDict(
        env_file=REPO_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    # What the jobs log (conf/logs.py): DEBUG, INFO (a line per batch, refresh, step), WARNING, ERROR
    log_level: str = "INFO"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_topic: str = "ad_events"
    kafka_partitions: int = 4

    # S3 object store (SeaweedFS in both launchers)
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = "lakehouse"
    s3_secret_key: str = "lakehouse-secret"
    s3_region: str = "us-east-1"
    s3_bucket: str = "lakehouse"

    # Iceberg REST catalog
    catalog_uri: str = "http://127.0.0.1:8181"

    # Trino
    trino_host: str = "127.0.0.1"
    trino_port: int = 8080
    trino_user: str = "lakehouse"
    trino_java_home: str | None = Field(
        default=None, description="JDK 25 for Trino; found automatically when unset"
    )

    # Spark
    spark_master: str = "local[2]"  # spark://127.0.0.1:7077: the local stack also starts a standalone cluster
    spark_master_webui_port: int = 8090
    spark_workers: int = 2  # standalone workers (one core each) the local stack starts
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "4g"
    checkpoint_dir: str | None = Field(
        default=None, description="streaming checkpoints; when unset: .stack/checkpoints, or S3 on a cluster")
    table_namespace_prefix: str = ""
    trigger_interval: str = "5 seconds"

    # Table maintenance (jobs/maintenance_job.py)
    maintenance_closed_after_minutes: int = 60  # a Bronze event hour is compacted once it ended this long ago
    maintenance_snapshot_retention_hours: int = 24  # expire_snapshots: keep time travel this far back
    maintenance_retain_last: int = 20  # ... and at least this many snapshots
    maintenance_orphan_age_hours: int = 72  # remove_orphan_files: only files older than this (never in-flight writes)
    gold_compaction_batches: int = 6  # the streaming job compacts the Gold days it writes every N batches (0: never)

    # Validation (ValidationLimits) and poison batches
    validation_max_ahead_seconds: int = ValidationLimits.max_ahead_seconds
    validation_max_age_days: int = ValidationLimits.max_age_days
    validation_max_amount: float = ValidationLimits.max_amount
    validation_max_id_length: int = ValidationLimits.max_id_length
    validation_max_touches: int = ValidationLimits.max_touches
    poison_batch_attempts: int = 3  # a batch failing this often the same way has its failing records isolated

    # BI servers (compose profile; not installable on the local stack). The Trino address
    # is the one Metabase and Grafana use to reach Trino (the compose service name).
    metabase_url: str = "http://127.0.0.1:3030"
    metabase_admin_email: str = "admin@lakehouse.local"
    metabase_admin_password: str = "Lakehouse-admin-2026"
    grafana_url: str = "http://127.0.0.1:3000"
    grafana_admin_user: str = "admin"
    grafana_admin_password: str = "lakehouse"
    bi_trino_host: str = "trino"
    bi_trino_port: int = 8080
    # Superset runs on the local stack too (its own venv; `make bi`, `make demo`), on 127.0.0.1.
    superset_port: int = 8088
    superset_admin_user: str = "admin"
    superset_admin_password: str = "lakehouse"
    superset_secret_key: str = ""  # signs sessions; empty: each install generates its own (superset_config.py)

    # Local stack
    runtime_dir: str = str(REPO_ROOT / ".stack")
    cache_dir: str = str(Path.home() / ".cache" / "attribution-lakehouse")
    seaweedfs_master_port: int = 9333
    seaweedfs_volume_port: int = 8380
    seaweedfs_filer_port: int = 8889
    stack_start_timeout_s: int = 180

    # The project's own images (make images; stack/images.py)
    container_engine: str | None = Field(
        default=None, description="podman or docker; when unset: podman if installed, else docker")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LEVELS:
            raise ValueError(f"LOG_LEVEL {value!r} is not one of {', '.join(LEVELS)}")
        return value.upper()

    @property
    def validation_limits(self) -> ValidationLimits:
        return ValidationLimits(self.validation_max_ahead_seconds, self.validation_max_age_days,
                                self.validation_max_amount, self.validation_max_id_length,
                                self.validation_max_touches)

    @property
    def catalog_name(self) -> str:
        # Fixed: the same three-part names must work in Spark and Trino
        # (conf/spark/spark-defaults.conf, conf/trino/etc/catalog/lakehouse.properties).
        return CATALOG_NAME

    @property
    def warehouse(self) -> str:
        return f"s3://{self.s3_bucket}/warehouse"

    @property
    def kafka_port(self) -> int:
        return _port_of(self.kafka_bootstrap_servers.split(",")[0])

    @property
    def s3_port(self) -> int:
        return _port_of(self.s3_endpoint)

    @property
    def catalog_port(self) -> int:
        return _port_of(self.catalog_uri)

    @property
    def spark_cluster(self) -> bool:
        """Do the jobs run on a standalone cluster (which the local stack starts)?"""
        return self.spark_master.startswith("spark://")

    @property
    def checkpoints(self) -> str:
        """Where streaming checkpoints go: CHECKPOINT_DIR, else on S3 whenever the master is
        not local (a checkpoint on one host's disk is lost with it), else under .stack."""
        if self.checkpoint_dir:
            return self.checkpoint_dir.rstrip("/")
        if not self.spark_master.startswith("local"):
            return f"s3a://{self.s3_bucket}/checkpoints"
        return str(REPO_ROOT / ".stack" / "checkpoints")

    @property
    def spark_master_port(self) -> int:
        """The standalone master's port: SPARK_MASTER's, else Spark's default."""
        return _port_of(self.spark_master.removeprefix("spark://")) if self.spark_cluster else 7077

    @property
    def spark_worker_ports(self) -> list[tuple[int, int]]:
        """(port, web UI port) of each standalone worker: the ones after the master's."""
        return [(self.spark_master_port + number, self.spark_master_webui_port + number)
                for number in range(1, self.spark_workers + 1)]

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    @property
    def superset_url(self) -> str:
        return f"http://127.0.0.1:{self.superset_port}"


def _port_of(address: str) -> int:
    parsed = urlparse(address if "//" in address else f"//{address}")
    if parsed.port is None:
        raise ValueError(f"no port in address {address!r}")
    return parsed.port


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


@lru_cache(maxsize=1)
def versions() -> dict:
    """The pinned versions of the stack (conf/versions.toml)."""
    with open(CONF_DIR / "versions.toml", "rb") as handle:
        return tomllib.load(handle)
