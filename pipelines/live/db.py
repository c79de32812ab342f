"""Database work from the runner's event loop: in a worker thread, connection closed after.

Calls are long and the runner lives for days: keeping per-thread connections
open would leak them (and hold test databases open).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connections


def _closing(fn):
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return run


async def in_db_thread(fn, *args, **kwargs):
    return await sync_to_async(_closing(fn), thread_sensitive=False)(*args, **kwargs)
