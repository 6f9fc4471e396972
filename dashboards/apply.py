"""`make dashboards`: apply the Trino views of dashboards/trino/ (idempotent), then import
Superset's dashboards (local stack, `make bi`) and bootstrap Metabase and Grafana (compose
profile) where they are reachable, and say what was done or skipped and why."""

from __future__ import annotations

import argparse
import sys

from stack.preflight import require
from conf.settings import get_settings
from dashboards import grafana_bootstrap, metabase_bootstrap, superset_bootstrap
from dashboards.trino_views import apply_views, qualified_name


def main(argv: list[str] | None = None) -> int:
    import trino

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m dashboards.apply", description=__doc__.split("\n\n")[0])
    parser.add_argument("--table-prefix", default=settings.table_namespace_prefix,
                        help="namespace prefix of every table (TABLE_NAMESPACE_PREFIX)")
    args = parser.parse_args(argv)
    require(settings, "trino")
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    try:
        for name in apply_views(connection.cursor(), args.table_prefix):
            print(f"trino: view {qualified_name(name, args.table_prefix)} applied")
    except trino.exceptions.TrinoUserError as error:
        if error.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
            sys.exit(f"error: {error.message} — the views read Gold, Bronze, ops.stream_progress and "
                     "dims.dim_campaigns: run the pipeline first (`make demo`, `make dims`)")
        raise
    finally:
        connection.close()
    superset_bootstrap.main(["--table-prefix", args.table_prefix])
    metabase_bootstrap.main()
    grafana_bootstrap.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
