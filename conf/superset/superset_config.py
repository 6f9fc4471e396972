"""Superset's configuration on the local stack (SUPERSET_CONFIG_PATH points here). The
launcher passes the values through the environment: one source, conf/settings.py."""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Metadata (users, datasets, charts, dashboards) in SQLite under the runtime dir.
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.environ['SUPERSET_METADATA_DB']}"
# No Redis on the local stack: results and filter state in process memory.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
# Plain http on 127.0.0.1: no HTTPS-only cookies or CSP nonce headers to get in a browser's way.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
# Served to a browser on the same machine: compressing the multi-MB JavaScript bundles on
# every first request costs CPU and seconds, and saves nothing on 127.0.0.1.
COMPRESS_REGISTER = False
# Dashboards are read, not authored here: no example data, no telemetry.
SUPERSET_LOAD_EXAMPLES = False
LOG_LEVEL = "WARNING"
