"""Health checks shared by the web process's /healthz (and the runner's)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from voicebot import local_models


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        result = {"ok": True, **detail}
    except Exception as exc:  # a health check reports failures, it never raises
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"embedded": settings.EMBEDDED_DATABASE, "pgvector": row[0] if row else None}


def check_redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def check_models() -> dict:
    models = local_models.availability()
    missing = [name for name, state in models.items() if not state["ok"]]
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)}")
    return {"models": models}


def report() -> dict:
    checks = {"database": _timed(check_database), "redis": _timed(check_redis), "models": _timed(check_models)}
    if not checks["models"]["ok"]:
        checks["models"]["models"] = local_models.availability()
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded", "checks": checks}
