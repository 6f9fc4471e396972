"""Trino views of dashboards/trino/*.sql, rendered for a table namespace prefix and applied
idempotently (CREATE OR REPLACE VIEW)."""

from __future__ import annotations

from pathlib import Path

from conf.settings import CATALOG_NAME
from conf.tables import Tables

VIEW_DIR = Path(__file__).resolve().parent / "trino"


def placeholders(prefix: str = "") -> dict[str, str]:
    tables = Tables(prefix)
    return {
        "gold": tables.gold,
        "bronze": tables.bronze,
        "audit": tables.audit,
        "gold_namespace": f"{CATALOG_NAME}.{prefix}gold",
        "dim_campaigns": f"{CATALOG_NAME}.{prefix}dims.dim_campaigns",
    }


def render(name: str, prefix: str = "") -> str:
    text = (VIEW_DIR / f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.format(**placeholders(prefix)).strip().rstrip(";")


def view_names() -> list[str]:
    return sorted(path.stem for path in VIEW_DIR.glob("*.sql"))


def apply_views(cursor, prefix: str = "", names: list[str] | None = None) -> list[str]:
    applied = []
    for name in names or view_names():
        cursor.execute(render(name, prefix))
        cursor.fetchall()
        applied.append(name)
    return applied
