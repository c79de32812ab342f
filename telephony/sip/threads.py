"""PJSIP objects that may be freed on any thread.

PJSIP's C++ destructors call into the library, which must know the calling thread. The agent
frees ended calls on the SIP thread (its graveyard), but Python's cyclic garbage collector runs
on whichever thread happens to allocate, and an object caught in a reference cycle is freed
there: a thread PJSIP does not know, and the process crashes (the full test suite did, twice).
``registered_on_free`` registers such a thread with PJSIP just before the object goes.
"""

from __future__ import annotations

import threading

import pjsua2 as pj


def register_this_thread() -> None:
    """Make the current thread known to PJSIP (a no-op where it is, or where the library is gone)."""
    try:
        endpoint = pj.Endpoint.instance()
        if not endpoint.libIsThreadRegistered():
            endpoint.libRegisterThread(f"py-{threading.get_ident()}")
    except Exception:  # noqa: BLE001 - no library (never started, or destroyed): nothing to register with
        pass


class RegisteredOnFree:
    """Mixin for our subclasses of PJSIP's classes: their destructor runs on a registered thread."""

    def __del__(self):
        register_this_thread()
