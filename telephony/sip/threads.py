"""PJSIP objects that may be freed on any thread.

PJSIP's C++ destructors call into the library, which must know the calling thread. The agent
frees ended calls on the SIP thread (its graveyard), but Python's cyclic garbage collector runs
on whichever thread happens to allocate, and an object caught in a reference cycle is freed
there: a thread PJSIP does not know, and the process crashes (the full test suite did, twice).
``registered_on_free`` registers such a thread with PJSIP just before the object goes.
"""

from __future__ import annotations

import gc
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


class SipThreadCollector:
    """While an endpoint lives, Python's cyclic garbage collection runs on the SIP thread only.

    Registering a thread before a destructor (``RegisteredOnFree``) is not enough: a collection
    on another thread frees PJSIP objects while the SIP thread is inside ``libHandleEvents``,
    and SWIG proxies that are not our subclasses (media, parameters) free without registering.
    The full suite still segfaulted once in a collection on the test thread. So automatic
    collection is switched off process-wide and the SIP thread collects between polls: the
    young generation every 0.5 s, the middle one every 5 s, the oldest every 10 minutes.

    What existed when the first endpoint started (the loaded models, the framework) is frozen
    (``gc.freeze``): collections never scan it, so none holds the GIL long enough to starve the
    media clock (a full collection of the test process took ~170 ms and garbled a call's audio).
    """

    YOUNG, MIDDLE, FULL = 50, 500, 60000  # polls of 10 ms
    _holders = 0
    _was_enabled = True
    _lock = threading.Lock()

    def __init__(self):
        with SipThreadCollector._lock:
            if SipThreadCollector._holders == 0:
                SipThreadCollector._was_enabled = gc.isenabled()
                gc.disable()
                gc.freeze()
            SipThreadCollector._holders += 1
        self._released = False

    def tick(self, polls: int) -> None:
        if polls % self.FULL == 0:
            gc.collect()
        elif polls % self.MIDDLE == 0:
            gc.collect(1)
        elif polls % self.YOUNG == 0:
            gc.collect(0)

    def release(self) -> None:
        """After the library is gone: automatic collection as it was before the first endpoint."""
        if self._released:
            return
        self._released = True
        with SipThreadCollector._lock:
            SipThreadCollector._holders -= 1
            if SipThreadCollector._holders == 0:
                gc.unfreeze()
                if SipThreadCollector._was_enabled:
                    gc.enable()
