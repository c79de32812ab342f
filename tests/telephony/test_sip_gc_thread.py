"""While a SIP endpoint lives, cyclic garbage is collected on the SIP thread only (telephony/sip/threads.py).

Run in an interpreter of its own: the suite's SIP endpoints (session fixtures) hold the collector
too, and would collect this test's garbage on their own threads.
"""

import subprocess
import sys

from django.conf import settings

SCRIPT = r'''
import gc, threading
from telephony.sip.threads import SipThreadCollector

class Cyclic:
    freed_on = []
    def __init__(self):
        self.me = self
    def __del__(self):
        Cyclic.freed_on.append(threading.get_ident())

assert gc.isenabled()
held, tick, sip = threading.Event(), threading.Event(), {}

def sip_loop():
    sip["id"] = threading.get_ident()
    collector = SipThreadCollector()
    held.set()
    tick.wait(10)
    collector.tick(SipThreadCollector.YOUNG)
    collector.release()

worker = threading.Thread(target=sip_loop)
worker.start()
held.wait(10)
assert not gc.isenabled(), "automatic collection still on while the SIP thread owns it"
Cyclic()  # unreachable at once, but in a cycle: only a collection frees it
for _ in range(20000):  # enough allocations for several automatic collections, were they on
    [object()]
assert Cyclic.freed_on == [], "collected on the test's thread"
tick.set()
worker.join(10)
assert Cyclic.freed_on == [sip["id"]], Cyclic.freed_on
assert gc.isenabled(), "automatic collection not back after the last endpoint"
print("ok")
'''


def test_the_sip_thread_collects_and_automatic_collection_comes_back_afterwards():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
