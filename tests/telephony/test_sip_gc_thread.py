"""While a SIP endpoint lives, cyclic garbage is collected on the SIP thread only (telephony/sip/threads.py)."""

import gc
import threading

from telephony.sip.threads import SipThreadCollector


class Cyclic:
    freed_on: list = []

    def __init__(self):
        self.me = self

    def __del__(self):
        Cyclic.freed_on.append(threading.get_ident())


def test_the_sip_thread_collects_and_automatic_collection_comes_back_afterwards():
    assert gc.isenabled()
    held = threading.Event()
    tick = threading.Event()
    done = threading.Event()
    sip_thread = {}

    def sip_loop():
        sip_thread["id"] = threading.get_ident()
        collector = SipThreadCollector()
        held.set()
        tick.wait(10)
        collector.tick(SipThreadCollector.YOUNG)
        collector.release()
        done.set()

    Cyclic.freed_on = []
    worker = threading.Thread(target=sip_loop)
    worker.start()
    held.wait(10)
    assert not gc.isenabled()  # no collection may start on this (the test's) thread now
    Cyclic()  # unreachable at once, but in a cycle: only a collection frees it
    for _ in range(20000):  # enough allocations to trigger several automatic collections, were they on
        [object()]
    assert Cyclic.freed_on == []
    tick.set()
    done.wait(10)
    worker.join(10)
    assert Cyclic.freed_on == [sip_thread["id"]]
    assert gc.isenabled()
