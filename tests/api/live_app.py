"""The web app served by gunicorn on the test database, as a client reaches it (the fuzzer's target)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid

import httpx
from django.conf import settings
from django.db import connection

from tests.conftest import database_url_of
from tests.ports import free_port
from tests.waiting import wait_until


@contextlib.contextmanager
def served_app(*, log_name: str, env: dict[str, str] | None = None):
    """gunicorn on a free loopback port; yields its base URL, stops it afterwards.

    API throttling is off (the fuzzer sends thousands of requests), Celery tasks go to a
    queue of their own that no worker reads (purged afterwards), and the LLM is a closed
    port, so a chat reply is the bot's fallback phrase at once: the fuzzer tests HTTP
    behaviour, not answers.
    """
    from voicebot.celery import app as celery_app

    port = free_port()
    queue = f"fuzz-{uuid.uuid4().hex[:8]}"
    child_env = {
        **os.environ,
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "VOICEBOT_API_THROTTLE_CLIENT": "off",
        "VOICEBOT_API_THROTTLE_ANON": "off",
        "VOICEBOT_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with open(settings.DATA_DIR / log_name, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "voicebot.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "4", "--timeout", "120", "--access-logfile", "-"],
            env=child_env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR)
        base = f"http://127.0.0.1:{port}"
        try:
            def answering() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {log.name}")
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{base}/api/schema/", timeout=10).status_code == 200
                return False

            wait_until(answering, 60, interval=0.2, what=f"gunicorn to serve the schema (log: {log.name})")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            with contextlib.suppress(Exception):
                with celery_app.connection_for_write() as conn:
                    conn.default_channel.queue_purge(queue)
