"""`make dashboards`: apply the Trino views of dashboards/trino/ (idempotent).

The Metabase and Grafana bootstraps are not written yet (issue #7); this says so.
"""

from __future__ import annotations

import sys

from conf.preflight import require
from conf.settings import get_settings
from dashboards.trino_views import apply_views


def main() -> int:
    import trino

    settings = get_settings()
    require(settings, "trino")
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    try:
        for name in apply_views(connection.cursor(), settings.table_namespace_prefix):
            print(f"trino: view {settings.table_namespace_prefix}gold.{name} applied")
    except trino.exceptions.TrinoUserError as error:
        if error.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
            sys.exit(f"error: {error.message} — the views read Gold and dims.dim_campaigns: run the pipeline "
                     "first (`make demo`, `make dims`)")
        raise
    finally:
        connection.close()
    print("metabase: skipped — the dashboard bootstrap is not implemented yet")
    print("grafana: skipped — the dashboard bootstrap is not implemented yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
