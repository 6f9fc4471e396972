"""Superset's configuration on the local stack (SUPERSET_CONFIG_PATH points here). The
launcher passes the values through the environment: one source, conf/settings.py."""

import os
import secrets
from pathlib import Path

# Keys that were ever published (this project's old default, Superset's placeholder) sign
# nothing: anyone could forge a session with them.
PUBLISHED_KEYS = {"local-stack-only-change-me-0f3c9a", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "thisISaSECRET_1234"}


def secret_key() -> str:
    """SUPERSET_SECRET_KEY when set, else the install's own key in `secret_key` beside the
    metadata database: generated on first start, mode 0600, kept with the sessions it signs."""
    given = os.environ.get("SUPERSET_SECRET_KEY", "")
    if given:
        if given in PUBLISHED_KEYS or len(given) < 32:
            raise RuntimeError("SUPERSET_SECRET_KEY is a published key or shorter than 32 characters: set a random "
                               "one (python -c 'import secrets; print(secrets.token_urlsafe(48))'), or unset it "
                               "and Superset generates its own")
        return given
    path = Path(os.environ["SUPERSET_METADATA_DB"]).with_name("secret_key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


SECRET_KEY = secret_key()
# Metadata (users, datasets, charts, dashboards) in SQLite under the runtime dir.
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.environ['SUPERSET_METADATA_DB']}"
# No Redis on the local stack: results and filter state in process memory.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
# Chart results: `make demo` warms them after each rollup refresh (every 60 s), so that a
# dashboard's first open is answered from here; the dashboards' own periodic refresh goes
# past the cache, so an open dashboard is never older than its refresh interval.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
# Plain http on 127.0.0.1: no HTTPS-only cookies or CSP nonce headers to get in a browser's way.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
# Served to a browser on the same machine: compressing the multi-MB JavaScript bundles on
# every first request costs CPU and seconds, and saves nothing on 127.0.0.1.
COMPRESS_REGISTER = False
# Dashboards are read, not authored here: no example data, no telemetry (its pixel is a
# request to the internet from every page, which hangs on a machine without one).
SUPERSET_LOAD_EXAMPLES = False
SCARF_ANALYTICS = False
LOG_LEVEL = "WARNING"
